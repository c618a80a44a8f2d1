package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// MaxFileSize bounds the configuration file.
const MaxFileSize = 1 << 20

// Load reads the configuration file at path (none when path is empty),
// then applies the LIVEGATE_* variables of env (in os.Environ form,
// "NAME=value"), which win over the file. It checks the syntax and the
// keys; call Validate for the values.
//
// Unknown keys, duplicate keys and values of the wrong type are errors
// that name the key and its line; every unknown key is reported, not just
// the first. The returned error wraps ErrInvalid for such problems and the
// os error when the file cannot be read.
func Load(path string, env []string) (*File, error) {
	f := &File{path: path, lines: map[string]int{}}
	if path != "" {
		data, err := readLimited(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := f.decode(data); err != nil {
			return nil, err
		}
	}
	if err := f.applyEnv(env); err != nil {
		return nil, err
	}
	return f, nil
}

// Parse is Load for a document already in memory; name is used in error
// messages in place of a file name.
func Parse(name string, data []byte, env []string) (*File, error) {
	f := &File{path: name, lines: map[string]int{}}
	if err := f.decode(data); err != nil {
		return nil, err
	}
	if err := f.applyEnv(env); err != nil {
		return nil, err
	}
	return f, nil
}

func readLimited(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxFileSize)
	}
	return data, nil
}

func (f *File) keyErr(key string, line int, format string, args ...any) *KeyError {
	return &KeyError{Key: key, File: f.path, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// decode checks the keys of data against File, then decodes it strictly.
func (f *File) decode(data []byte) error {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return f.yamlErr(err)
	}
	var errs []error
	for _, doc := range file.Docs {
		if doc.Body == nil {
			continue
		}
		f.walk(doc.Body, reflect.TypeFor[File](), "", &errs)
	}
	if len(file.Docs) > 1 {
		errs = append(errs, f.keyErr("(document)", 0, "the file must hold one YAML document, not %d", len(file.Docs)))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := yaml.UnmarshalWithOptions(data, f, yaml.Strict()); err != nil {
		return f.yamlErr(err)
	}
	return nil
}

// yamlErr turns a go-yaml error into a KeyError without the source
// excerpt (the file may hold secrets).
func (f *File) yamlErr(err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		line := 0
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			line = tk.Position.Line
		}
		return f.keyErr(f.keyAtLine(line), line, "%s", ye.GetMessage())
	}
	return &KeyError{Key: "(file)", File: f.path, Msg: err.Error()}
}

// lineOf returns the line of key, or of its closest parent in the file
// (0: none).
func (f *File) lineOf(key string) int {
	for key != "" {
		if line, ok := f.lines[key]; ok {
			return line
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// keyAtLine names the key defined on line, or "(file)".
func (f *File) keyAtLine(line int) string {
	best := ""
	for k, l := range f.lines {
		if l == line && (best == "" || len(k) > len(best)) {
			best = k
		}
	}
	if best == "" {
		return "(file)"
	}
	return best
}

func unwrapNode(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.TagNode:
			n = v.Value
		case *ast.AnchorNode:
			n = v.Value
		case *ast.CommentGroupNode:
			return nil
		default:
			return n
		}
	}
}

var durationType = reflect.TypeFor[time.Duration]()

// walk records the line of every key and reports the unknown ones.
func (f *File) walk(n ast.Node, t reflect.Type, path string, errs *[]error) {
	n = unwrapNode(n)
	if n == nil {
		return
	}
	switch {
	case t == durationType:
		if sc, ok := n.(ast.ScalarNode); ok && n.Type() == ast.StringType {
			if s, _ := sc.GetValue().(string); s != "" {
				if _, err := time.ParseDuration(s); err != nil {
					*errs = append(*errs, f.keyErr(path, n.GetToken().Position.Line,
						"%q is not a duration (e.g. 30s, 5m, 1h)", s))
				}
			}
		}
	case t.Kind() == reflect.Struct:
		var values []*ast.MappingValueNode
		switch m := n.(type) {
		case *ast.MappingNode:
			values = m.Values
		case *ast.MappingValueNode:
			values = []*ast.MappingValueNode{m}
		default:
			return // a type error the decoder reports
		}
		for _, mv := range values {
			if _, merge := mv.Key.(*ast.MergeKeyNode); merge {
				continue
			}
			key := mv.Key.GetToken().Value
			line := mv.Key.GetToken().Position.Line
			p := joinPath(path, key)
			sf, ok := fieldByKey(t, key)
			if !ok {
				msg := "unknown key"
				if s := suggest(t, key); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				*errs = append(*errs, f.keyErr(p, line, "%s", msg))
				continue
			}
			f.lines[p] = line
			f.walk(mv.Value, sf.Type, p, errs)
		}
	case t.Kind() == reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			return
		}
		for i, v := range seq.Values {
			p := fmt.Sprintf("%s[%d]", path, i)
			if tk := v.GetToken(); tk != nil && tk.Position != nil {
				f.lines[p] = tk.Position.Line
			}
			f.walk(v, t.Elem(), p, errs)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlKey returns the YAML key of a struct field ("" for none).
func yamlKey(sf reflect.StructField) string {
	if !sf.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if sf := t.Field(i); yamlKey(sf) == key && key != "" {
			return sf, true
		}
	}
	return reflect.StructField{}, false
}

// suggest returns the key of t closest to key, if close enough to be a
// typo.
func suggest(t reflect.Type, key string) string {
	best, bestD := "", 3
	for i := range t.NumField() {
		k := yamlKey(t.Field(i))
		if k == "" {
			continue
		}
		if d := editDistance(k, key); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// envVar is one key settable from the environment.
type envVar struct {
	path string
	v    reflect.Value
}

// envVars lists the environment variables of every key of f: scalars and
// lists of scalars, and the fields of the list entries present.
func (f *File) envVars() map[string]envVar {
	out := map[string]envVar{}
	var walk func(v reflect.Value, path, name string)
	walk = func(v reflect.Value, path, name string) {
		t := v.Type()
		switch {
		case t.Kind() == reflect.Struct:
			for i := range t.NumField() {
				k := yamlKey(t.Field(i))
				if k == "" {
					continue
				}
				walk(v.Field(i), joinPath(path, k), name+"_"+strings.ToUpper(k))
			}
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i), name+"_"+strconv.Itoa(i))
			}
		default:
			out[name] = envVar{path: path, v: v}
		}
	}
	walk(reflect.ValueOf(f).Elem(), "", strings.TrimSuffix(EnvPrefix, "_"))
	return out
}

// EnvName returns the environment variable that sets the key at path
// ("tokens.hmac_secret_file" → "LIVEGATE_TOKENS_HMAC_SECRET_FILE",
// "namespaces[0].name" → "LIVEGATE_NAMESPACES_0_NAME").
func EnvName(path string) string {
	r := strings.NewReplacer(".", "_", "[", "_", "]", "")
	return EnvPrefix + strings.ToUpper(r.Replace(path))
}

// applyEnv sets the keys named by LIVEGATE_* variables of env.
func (f *File) applyEnv(env []string) error {
	vals := map[string]string{}
	var names []string
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if _, seen := vals[name]; !seen {
			names = append(names, name)
		}
		vals[name] = val
	}
	slices.Sort(names)
	vars := f.envVars()
	var errs []error
	set := func(name string) bool {
		ev, ok := vars[name]
		if !ok {
			return false
		}
		if err := setScalar(ev.v, vals[name]); err != nil {
			errs = append(errs, &KeyError{Key: name, Msg: fmt.Sprintf("sets %s: %v", ev.path, err)})
		}
		delete(f.lines, ev.path)
		f.fromEnv(ev.path, name)
		return true
	}
	for _, name := range names {
		if !set(name) {
			switch name {
			case EnvLegacySecret, EnvLegacyAudience, EnvLegacyAdminSecret:
			default:
				f.warn("%s matches no key and is ignored", name)
			}
		}
	}
	// Earlier variable names, unless the new one was given.
	legacy := func(old, path string, clear ...string) {
		val, ok := vals[old]
		if !ok || val == "" {
			return
		}
		if _, given := vals[EnvName(path)]; given {
			return
		}
		for _, c := range clear {
			if _, given := vals[EnvName(c)]; given {
				return
			}
		}
		_ = setScalar(vars[EnvName(path)].v, val)
		delete(f.lines, path)
		f.fromEnv(path, old)
		for _, c := range clear {
			_ = setScalar(vars[EnvName(c)].v, "")
			delete(f.lines, c)
		}
	}
	legacy(EnvLegacySecret, "tokens.hmac_secret", "tokens.hmac_secret_file")
	legacy(EnvLegacyAudience, "tokens.audience")
	legacy(EnvLegacyAdminSecret, "admin.secret", "admin.secret_file")
	return errors.Join(errs...)
}

func (f *File) fromEnv(path, name string) {
	if f.env == nil {
		f.env = map[string]string{}
	}
	f.env[path] = name
}

func (f *File) warn(format string, args ...any) {
	f.warnings = append(f.warnings, fmt.Sprintf(format, args...))
}

// Warnings returns the non-fatal remarks of Load and Validate: ignored
// variables and settings that are legal but worth a look.
func (f *File) Warnings() []string { return slices.Clone(f.warnings) }

// setScalar parses s into v: strings, booleans, numbers, durations and
// comma-separated lists of strings.
func setScalar(v reflect.Value, s string) error {
	s = strings.TrimSpace(s)
	switch {
	case v.Type() == durationType:
		if s == "" {
			v.SetInt(0)
			return nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration (e.g. 30s, 5m): %q", s)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		if s == "" {
			v.SetBool(false)
			return nil
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not a boolean (true or false): %q", s)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		if s == "" {
			v.SetInt(0)
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v.OverflowInt(n) {
			return fmt.Errorf("not an integer: %q", s)
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		if s == "" {
			v.SetFloat(0)
			return nil
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", s)
		}
		v.SetFloat(x)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var items []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
