package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// ruleEnv is what a rule sees. Only tagged fields are visible; ruleEnv has
// no methods, so rules cannot call anything but hasPerm, inGroup and the
// expr builtins.
type ruleEnv struct {
	Subject ruleSubject       `expr:"subject"`
	Channel ruleChannel       `expr:"channel"`
	Request ruleRequest       `expr:"request"`
	HasPerm func(string) bool `expr:"hasPerm"`
	InGroup func(string) bool `expr:"inGroup"`
}

type ruleSubject struct {
	User    string   `expr:"user"`
	Session string   `expr:"session"`
	Tenant  string   `expr:"tenant"`
	Groups  []string `expr:"groups"`
	Perms   []string `expr:"perms"`
}

type ruleChannel struct {
	Name      string   `expr:"name"`
	Namespace string   `expr:"namespace"`
	Base      string   `expr:"base"`
	Users     []string `expr:"users"`
}

type ruleRequest struct {
	IP     string `expr:"ip"`
	Origin string `expr:"origin"`
}

// ruleMemoryBudget bounds what one evaluation may allocate inside the VM
// (ranges, maps); simple rules use nothing.
const ruleMemoryBudget = 100_000

// compileRule compiles src against ruleEnv as a bool expression within the
// node limit, and checks constant arguments of hasPerm and inGroup.
func (s *Set) compileRule(src string) (p *vm.Program, err error) {
	defer func() {
		// expr must not take the process down on a pathological input.
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("rule: compiler panic: %v", r)
		}
	}()
	p, err = expr.Compile(src,
		expr.Env(ruleEnv{}),
		expr.AsBool(),
		expr.MaxNodes(uint(s.maxNodes)),
	)
	if err != nil {
		return nil, fmt.Errorf("rule: %w", err)
	}
	v := &argChecker{}
	node := p.Node()
	ast.Walk(&node, v)
	if v.err != nil {
		return nil, fmt.Errorf("rule: %w", v.err)
	}
	return p, nil
}

// argChecker rejects hasPerm and inGroup calls whose constant argument can
// never match, catching typos at configuration time.
type argChecker struct{ err error }

func (v *argChecker) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok || v.err != nil || len(call.Arguments) != 1 {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok {
		return
	}
	arg, ok := call.Arguments[0].(*ast.StringNode)
	if !ok {
		return
	}
	switch id.Value {
	case "hasPerm":
		if !validPerm(arg.Value, false) {
			v.err = fmt.Errorf("hasPerm(%q): invalid permission (concrete segments of [A-Za-z0-9_.-], no wildcards)", arg.Value)
		}
	case "inGroup":
		if !validName(arg.Value) {
			v.err = fmt.Errorf("inGroup(%q): invalid group", arg.Value)
		}
	}
}

// maxScratch is the largest scratch buffer an evaluator keeps for reuse.
const maxScratch = 256

// evaluator holds the per-call state of one rule evaluation. Evaluators are
// pooled per Set; every field is reset before and cleared after use, so
// each call sees an environment built for it alone.
type evaluator struct {
	s    *Set
	sub  Subject
	env  ruleEnv
	vm   vm.VM
	seen map[string]struct{}
	// groups and perms are scratch buffers for role expansion.
	groups, perms []string
}

func (s *Set) newEvaluator() *evaluator {
	e := &evaluator{s: s, seen: make(map[string]struct{})}
	e.vm.MemoryBudget = ruleMemoryBudget
	e.env.HasPerm = e.hasPerm
	e.env.InGroup = e.inGroup
	return e
}

func (e *evaluator) hasPerm(p string) bool { return e.s.hasPerm(&e.sub, p) }
func (e *evaluator) inGroup(g string) bool { return validName(g) && e.s.inGroup(&e.sub, g) }

// errRulePanic replaces a panic recovered during evaluation.
var errRulePanic = errors.New("panic")

// evalRule runs p for the subject. It returns nil if the rule yields true
// and an error wrapping ErrDenied otherwise, including when the rule fails
// or panics.
func (s *Set) evalRule(p *vm.Program, sub *Subject, channel string, req *RequestAttrs) (err error) {
	e, _ := s.evals.Get().(*evaluator)
	if e == nil {
		e = s.newEvaluator()
	}
	defer func() {
		if r := recover(); r != nil {
			// Deny, and drop the evaluator: its state is suspect.
			err = fmt.Errorf("%w: rule failed: %w", ErrDenied, errRulePanic)
			return
		}
		e.reset()
		s.evals.Put(e)
	}()
	e.fill(sub, channel, req)
	out, runErr := e.vm.Run(p, &e.env)
	if runErr != nil {
		return fmt.Errorf("%w: rule failed: %w", ErrDenied, runErr)
	}
	if ok, _ := out.(bool); !ok {
		return errRule
	}
	return nil
}

// fill builds the environment for one call.
func (e *evaluator) fill(sub *Subject, channel string, req *RequestAttrs) {
	s := e.s
	e.sub = *sub
	groups, perms := sub.Groups, sub.Perms
	if s.hasRoles(sub) {
		e.groups = s.expandGroups(sub, e.groups[:0], e.seen)
		clear(e.seen)
		e.perms = s.effective(sub, e.perms[:0], e.seen)
		clear(e.seen)
		groups, perms = e.groups, e.perms
	}
	e.env.Subject = ruleSubject{
		User:    sub.User,
		Session: sub.Session,
		Tenant:  sub.Tenant,
		Groups:  groups,
		Perms:   perms,
	}
	e.env.Channel = ruleChannel{}
	if channel != "" {
		ns, rest, _ := strings.Cut(channel, ":")
		base, users, limited := strings.Cut(rest, "#")
		e.env.Channel = ruleChannel{Name: channel, Namespace: ns, Base: base}
		if limited {
			e.env.Channel.Users = strings.Split(users, ",")
		}
	}
	e.env.Request = ruleRequest{IP: req.IP, Origin: req.Origin}
}

// reset drops every reference to the last call's data.
func (e *evaluator) reset() {
	e.sub = Subject{}
	e.env.Subject = ruleSubject{}
	e.env.Channel = ruleChannel{}
	e.env.Request = ruleRequest{}
	clear(e.groups)
	clear(e.perms)
	clear(e.seen)
	e.groups, e.perms = e.groups[:0], e.perms[:0]
	if cap(e.groups) > maxScratch || cap(e.perms) > maxScratch {
		// Do not keep an unusually large subject's buffers alive.
		e.groups, e.perms = nil, nil
		e.seen = make(map[string]struct{})
	}
	clear(e.vm.Stack)
	clear(e.vm.Variables)
}
