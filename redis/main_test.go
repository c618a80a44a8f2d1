package redis_test

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/livegate/livegate/redis"
)

// sharedAddr is the Redis the tests use: LIVEGATE_REDIS_ADDR, or a
// private redis-server started by TestMain; "" when there is none.
var sharedAddr string

func TestMain(m *testing.M) {
	flag.Parse()
	sharedAddr = os.Getenv("LIVEGATE_REDIS_ADDR")
	var srv *server
	if sharedAddr == "" {
		if path, err := exec.LookPath("redis-server"); err == nil {
			srv, err = startServer(path, 0)
			if err != nil {
				fmt.Fprintln(os.Stderr, "starting redis-server:", err)
				os.Exit(1)
			}
			sharedAddr = srv.addr()
			// The examples read the address from the environment.
			os.Setenv("LIVEGATE_REDIS_ADDR", sharedAddr)
		}
	}
	if sharedAddr == "" && os.Getenv("LIVEGATE_REQUIRE_REDIS") != "1" {
		// Examples need Redis and cannot skip; tests skip themselves.
		_ = flag.Set("test.run", "^(Test|Benchmark)")
	}
	code := m.Run()
	if srv != nil {
		srv.stop()
	}
	os.Exit(code)
}

// needRedis returns the shared Redis address, skipping the test when
// there is none (failing when LIVEGATE_REQUIRE_REDIS=1).
func needRedis(t testing.TB) string {
	t.Helper()
	if sharedAddr == "" {
		if os.Getenv("LIVEGATE_REQUIRE_REDIS") == "1" {
			t.Fatal("no Redis: set LIVEGATE_REDIS_ADDR or install redis-server")
		}
		t.Skip("no Redis: set LIVEGATE_REDIS_ADDR or install redis-server")
	}
	return sharedAddr
}

// server is a private redis-server process without persistence.
type server struct {
	path string
	port int
	cmd  *exec.Cmd
}

// startServer starts redis-server on port (a free one when 0).
func startServer(path string, port int) (*server, error) {
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	s := &server{path: path, port: port}
	return s, s.start()
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *server) start() error {
	s.cmd = exec.Command(s.path, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--logfile", "")
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	if err := s.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.stop()
	return fmt.Errorf("redis-server on port %d did not start", s.port)
}

func (s *server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// privateServer starts a redis-server of the test's own, for tests that
// stop or restart it.
func privateServer(t *testing.T) *server {
	t.Helper()
	needRedis(t)
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("LIVEGATE_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-server is not on PATH")
		}
		t.Skip("redis-server is not on PATH")
	}
	s, err := startServer(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

var prefixSeq struct {
	sync.Mutex
	n int
}

// testPrefix returns a key prefix no other test uses.
func testPrefix(t testing.TB) string {
	prefixSeq.Lock()
	prefixSeq.n++
	n := prefixSeq.n
	prefixSeq.Unlock()
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	return fmt.Sprintf("lgtest:%d:%d:%s:", os.Getpid(), n, name)
}

// newEngine connects to addr with short timeouts; opts may adjust the
// Options.
func newEngine(t testing.TB, addr, prefix string, opts ...func(*redis.Options)) *redis.Engine {
	t.Helper()
	o := redis.Options{
		Addr:         addr,
		KeyPrefix:    prefix,
		DialTimeout:  time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
	}
	for _, f := range opts {
		f(&o)
	}
	e, err := redis.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// rawClient is a plain client for inspecting or disturbing Redis.
func rawClient(t testing.TB, addr string) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
