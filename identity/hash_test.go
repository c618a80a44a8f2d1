package identity_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate/identity"
)

// cheap keeps tests fast; only TestDefaultParams and the benchmarks pay the
// real cost.
var cheap = identity.Params{Memory: 1024, Time: 1}

func TestHashVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	phc, err := identity.Hash("correct-zebra-lantern-91", cheap)
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "$argon2id$v=19$m=1024,t=1,p=1$"
	if !strings.HasPrefix(phc, prefix) {
		t.Fatalf("phc = %q, want prefix %q", phc, prefix)
	}
	fields := strings.Split(strings.TrimPrefix(phc, prefix), "$")
	if len(fields) != 2 || len(fields[0]) != 22 || len(fields[1]) != 43 || strings.Contains(phc, "=$") {
		t.Fatalf("salt/hash fields %q: want 16 and 32 bytes in unpadded base64", fields)
	}
	ok, _, err := identity.Verify("correct-zebra-lantern-91", phc)
	if err != nil || !ok {
		t.Fatalf("Verify = %v, %v; want true, nil", ok, err)
	}
	again, err := identity.Hash("correct-zebra-lantern-91", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if again == phc {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

func TestVerifyWrongPassword(t *testing.T) {
	t.Parallel()
	phc, err := identity.Hash("correct-zebra-lantern-91", cheap)
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", "correct-zebra-lantern-92", "Correct-zebra-lantern-91", "correct-zebra-lantern-91 "} {
		ok, rehash, err := identity.Verify(pw, phc)
		if ok || rehash || err != nil {
			t.Errorf("Verify(%q) = %v, %v, %v; want false, false, nil", pw, ok, rehash, err)
		}
	}
}

func TestDefaultParams(t *testing.T) {
	t.Parallel()
	if got, want := identity.DefaultParams, (identity.Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}); got != want {
		t.Fatalf("DefaultParams = %+v, want OWASP %+v", got, want)
	}
	phc, err := identity.Hash("correct-zebra-lantern-91", identity.Params{}) // zero value = defaults
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("phc = %q", phc)
	}
	ok, rehash, err := identity.Verify("correct-zebra-lantern-91", phc)
	if !ok || rehash || err != nil {
		t.Fatalf("Verify = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
}

func TestNeedsRehash(t *testing.T) {
	t.Parallel()
	for name, p := range map[string]identity.Params{
		"memory":  {Memory: 2048, Time: 2},
		"time":    {Memory: 1024, Time: 1},
		"threads": {Memory: 1024, Time: 2, Threads: 2},
		"salt":    {Memory: 1024, Time: 2, SaltLen: 32},
		"key":     {Memory: 1024, Time: 2, KeyLen: 64},
		"above":   {Memory: 1024, Time: 3},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			phc, err := identity.Hash("correct-zebra-lantern-91", p)
			if err != nil {
				t.Fatal(err)
			}
			ok, rehash, err := identity.Verify("correct-zebra-lantern-91", phc)
			if !ok || !rehash || err != nil {
				t.Fatalf("Verify = %v, %v, %v; want true, true, nil", ok, rehash, err)
			}
		})
	}
}

func TestVerifyTampered(t *testing.T) {
	t.Parallel()
	phc, err := identity.Hash("correct-zebra-lantern-91", cheap)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(phc, "$") // "", alg, v, params, salt, hash
	join := func(alter func(f []string)) string {
		g := append([]string(nil), f...)
		alter(g)
		return strings.Join(g, "$")
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := map[string]string{
		"salt":        join(func(f []string) { f[4] = flip(f[4], 0) }),
		"hash":        join(func(f []string) { f[5] = flip(f[5], 3) }),
		"memory":      join(func(f []string) { f[3] = "m=2048,t=1,p=1" }),
		"time":        join(func(f []string) { f[3] = "m=1024,t=2,p=1" }),
		"threads":     join(func(f []string) { f[3] = "m=1024,t=1,p=2" }),
		"salt cut":    join(func(f []string) { f[4] = f[4][:20] }),
		"hash cut":    join(func(f []string) { f[5] = f[5][:40] }),
		"hash halved": join(func(f []string) { f[5] = f[5][:22] }),
		"hash longer": join(func(f []string) { f[5] += "AAAA" }),
	}
	for name, bad := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// Depending on the change the string is either refused or no
			// longer matches; it must never verify.
			if ok, _, err := identity.Verify("correct-zebra-lantern-91", bad); ok {
				t.Fatalf("Verify(%q) = true, %v", bad, err)
			}
		})
	}
}

func TestVerifyRefusesStrictly(t *testing.T) {
	t.Parallel()
	const (
		salt16 = "c29tZXNhbHRzb21lc2FsdA"                      // 16 bytes
		key32  = "c29tZWhhc2hzb21laGFzaHNvbWVoYXNoc29tZWhhc2g" // 32 bytes
		tail   = "$" + salt16 + "$" + key32
	)
	tests := []struct {
		name, phc string
		want      error
	}{
		{"argon2i", "$argon2i$v=19$m=1024,t=1,p=1" + tail, identity.ErrUnsupported},
		{"argon2d", "$argon2d$v=19$m=1024,t=1,p=1" + tail, identity.ErrUnsupported},
		{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", identity.ErrUnsupported},
		{"bcrypt 2a", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", identity.ErrUnsupported},
		{"scrypt", "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E", identity.ErrUnsupported},
		{"upper case", "$ARGON2ID$v=19$m=1024,t=1,p=1" + tail, identity.ErrUnsupported},
		{"version 16", "$argon2id$v=16$m=1024,t=1,p=1" + tail, identity.ErrUnsupported},
		{"no version", "$argon2id$m=1024,t=1,p=1" + tail, identity.ErrMalformed},
		{"empty", "", identity.ErrMalformed},
		{"no leading $", "argon2id$v=19$m=1024,t=1,p=1" + tail, identity.ErrMalformed},
		{"trailing $", "$argon2id$v=19$m=1024,t=1,p=1" + tail + "$", identity.ErrMalformed},
		{"extra param", "$argon2id$v=19$m=1024,t=1,p=1,keyid=abc" + tail, identity.ErrMalformed},
		{"params reordered", "$argon2id$v=19$t=1,m=1024,p=1" + tail, identity.ErrMalformed},
		{"leading zero", "$argon2id$v=19$m=01024,t=1,p=1" + tail, identity.ErrMalformed},
		{"plus sign", "$argon2id$v=19$m=+1024,t=1,p=1" + tail, identity.ErrMalformed},
		{"negative", "$argon2id$v=19$m=1024,t=-1,p=1" + tail, identity.ErrMalformed},
		{"space", "$argon2id$v=19$m=1024, t=1,p=1" + tail, identity.ErrMalformed},
		{"11 digits", "$argon2id$v=19$m=10000000000,t=1,p=1" + tail, identity.ErrMalformed},
		{"memory max uint32", "$argon2id$v=19$m=4294967295,t=1,p=1" + tail, identity.ErrParams},
		{"memory 257 MiB", "$argon2id$v=19$m=263168,t=1,p=1" + tail, identity.ErrParams},
		{"memory below 8p", "$argon2id$v=19$m=15,t=1,p=2" + tail, identity.ErrParams},
		{"time max uint32", "$argon2id$v=19$m=1024,t=4294967295,p=1" + tail, identity.ErrParams},
		{"time 11", "$argon2id$v=19$m=1024,t=11,p=1" + tail, identity.ErrParams},
		{"time 0", "$argon2id$v=19$m=1024,t=0,p=1" + tail, identity.ErrParams},
		{"threads 255", "$argon2id$v=19$m=4096,t=1,p=255" + tail, identity.ErrParams},
		{"threads 256", "$argon2id$v=19$m=4096,t=1,p=256" + tail, identity.ErrParams},
		{"threads 0", "$argon2id$v=19$m=1024,t=1,p=0" + tail, identity.ErrParams},
		{"salt 4 bytes", "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$" + key32, identity.ErrParams},
		{"salt empty", "$argon2id$v=19$m=1024,t=1,p=1$$" + key32, identity.ErrParams},
		{"salt 200 bytes", "$argon2id$v=19$m=1024,t=1,p=1$" + strings.Repeat("A", 267) + "$" + key32, identity.ErrMalformed},
		{"key 8 bytes", "$argon2id$v=19$m=1024,t=1,p=1$" + salt16 + "$c29tZWhhc2g", identity.ErrParams},
		{"key 96 bytes", "$argon2id$v=19$m=1024,t=1,p=1$" + salt16 + "$" + strings.Repeat("A", 128), identity.ErrParams},
		{"padded salt", "$argon2id$v=19$m=1024,t=1,p=1$" + salt16 + "==$" + key32, identity.ErrMalformed},
		{"url alphabet", "$argon2id$v=19$m=1024,t=1,p=1$" + salt16 + "$" + key32[:40] + "-_A", identity.ErrMalformed},
		{"stray bits", "$argon2id$v=19$m=1024,t=1,p=1$" + salt16[:21] + "B$" + key32, identity.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			ok, rehash, err := identity.Verify("correct-zebra-lantern-91", tt.phc)
			if ok || rehash || !errors.Is(err, tt.want) {
				t.Fatalf("Verify(%q) = %v, %v, %v; want error %v", tt.phc, ok, rehash, err, tt.want)
			}
			// Refused while parsing, before any Argon2 work.
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Fatalf("refusal took %v", d)
			}
		})
	}
}

func TestVerifyAbsurdMemoryQuickly(t *testing.T) {
	// Not parallel: AllocsPerRun counts every allocation in the process.
	// 4 TiB of memory would crash the process if the parser trusted it.
	phc := "$argon2id$v=19$m=4294967295,t=10,p=16$c29tZXNhbHRzb21lc2FsdA$c29tZWhhc2hzb21laGFzaHNvbWVoYXNoc29tZWhhc2g"
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := identity.Verify("x", phc); !errors.Is(err, identity.ErrParams) {
			t.Fatalf("err = %v, want ErrParams", err)
		}
	})
	if allocs > 20 {
		t.Fatalf("%v allocations to refuse absurd parameters", allocs)
	}
}

func TestHashRefusesParams(t *testing.T) {
	t.Parallel()
	for name, p := range map[string]identity.Params{
		"memory too high": {Memory: 256*1024 + 1, Time: 1},
		"memory below 8p": {Memory: 16, Time: 1, Threads: 4},
		"time too high":   {Memory: 1024, Time: 11},
		"threads":         {Memory: 1024, Time: 1, Threads: 17},
		"short salt":      {Memory: 1024, Time: 1, SaltLen: 4},
		"long salt":       {Memory: 1024, Time: 1, SaltLen: 65},
		"short key":       {Memory: 1024, Time: 1, KeyLen: 8},
		"long key":        {Memory: 1024, Time: 1, KeyLen: 65},
	} {
		if phc, err := identity.Hash("correct-zebra-lantern-91", p); !errors.Is(err, identity.ErrParams) {
			t.Errorf("%s: Hash = %q, %v; want ErrParams", name, phc, err)
		}
	}
}

func TestHashVerifyTooLong(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", identity.MaxPasswordBytes+1)
	if _, err := identity.Hash(long, cheap); !errors.Is(err, identity.ErrTooLong) {
		t.Fatalf("Hash: err = %v, want ErrTooLong", err)
	}
	phc, err := identity.Hash(long[1:], cheap) // exactly the maximum
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := identity.Verify(long[1:], phc); !ok || err != nil {
		t.Fatalf("Verify at the maximum = %v, %v", ok, err)
	}
	if ok, _, err := identity.Verify(long, phc); ok || !errors.Is(err, identity.ErrTooLong) {
		t.Fatalf("Verify over the maximum = %v, %v; want ErrTooLong", ok, err)
	}
}

func BenchmarkHash(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := identity.Hash("correct-zebra-lantern-91", identity.DefaultParams); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	phc, err := identity.Hash("correct-zebra-lantern-91", identity.DefaultParams)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := identity.Verify("correct-zebra-lantern-91", phc); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkVerifyRefused(b *testing.B) {
	phc := "$argon2id$v=19$m=4294967295,t=10,p=16$c29tZXNhbHRzb21lc2FsdA$c29tZWhhc2hzb21laGFzaHNvbWVoYXNoc29tZWhhc2g"
	b.ReportAllocs()
	for b.Loop() {
		identity.Verify("x", phc)
	}
}
