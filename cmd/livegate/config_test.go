package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livegate/livegate/config"
)

func TestConfigExampleValidates(t *testing.T) {
	var out bytes.Buffer
	cmd := rootCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"config", "example"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if out.String() != config.Example() {
		t.Fatal("config example does not print the embedded example")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "livegate.yaml")
	key := filepath.Join(dir, "token.key")
	if err := os.WriteFile(p, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte(serveSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	var res bytes.Buffer
	if err := runConfigCheck(p, []string{"LIVEGATE_TOKENS_HMAC_SECRET_FILE=" + key}, &res); err != nil {
		t.Fatalf("example refused:\n%s", res.String())
	}
	if !strings.HasSuffix(res.String(), p+": ok\n") {
		t.Fatalf("output %q", res.String())
	}
}

func TestConfigCheckListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, []byte(serveSecret), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "livegate.yaml")
	y := "listen: 0.0.0.0:8080\ndebug: true\nallowed_origins: ['*']\ntokens:\n  hmac_secret_file: " + open + "\n"
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LIVEGATE_REDIS_ADDR", "10.1.2.3:6379")
	t.Setenv("LIVEGATE_REDIS_PASSWORD", "plaintext-password")
	var out bytes.Buffer
	cmd := rootCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"config", "check", "--config", p})
	err := cmd.Execute()
	if !errors.Is(err, errConfigInvalid) {
		t.Fatalf("err = %v", err)
	}
	got := out.String()
	for _, want := range []string{
		"4 problem(s)",
		p + ":2: debug: refused",
		p + ":3: allowed_origins[0]:",
		p + ":5: tokens.hmac_secret_file: " + open + " has mode 0644",
		"redis.tls.enabled: refused: the Redis password would cross the network",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// A syntax problem (unknown key) is listed too, with its line.
	if err := os.WriteFile(p, []byte("listen: 127.0.0.1:0\ntokns:\n  audience: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runConfigCheck(p, nil, &out); !errors.Is(err, errConfigInvalid) || !strings.Contains(out.String(), p+`:2: tokns: unknown key (did you mean "tokens"?)`) {
		t.Fatalf("err = %v, output:\n%s", err, out.String())
	}
	// A missing file is an error too.
	if err := runConfigCheck(filepath.Join(dir, "none.yaml"), nil, &out); err == nil {
		t.Fatal("missing file accepted")
	}
}
