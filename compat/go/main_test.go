package compat

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dtm-labs/dtm/client/dtmcli"
	dtmlogger "github.com/dtm-labs/dtm/client/dtmcli/logger"
	"github.com/dtm-labs/dtm/client/dtmgrpc/dtmgimp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Environment of one `go test` run, set up once by TestMain.
var (
	// dtmHTTP is the base of DTM's HTTP API (what dtmcli calls "dtm server"), e.g. http://127.0.0.1:PORT/api/dtmsvr.
	dtmHTTP string
	// dtmGrpc is the coordinator's gRPC address host:port (what dtmgrpc calls "dtm server").
	dtmGrpc string
	// testAPI is the base URL of dtx's test-only endpoints, "" when the coordinator is not a dtx we started.
	testAPI string
	// busiHTTP is the base URL of the Go HTTP branch service, busiGrpc the host:port of the gRPC one.
	busiHTTP string
	busiGrpc string
	// grpcSkip is the reason the gRPC tests are skipped, "" when the coordinator serves DTM's gRPC API.
	grpcSkip string
	// target is DTX_COMPAT_TARGET: "dtx" (default) or "dtm", the coordinator the expectations are checked
	// against. With "dtm" and no DTX_COMPAT_DTM_HTTP, the suite starts DTM's binary (DTX_COMPAT_DTM_BIN).
	target = envOr("DTX_COMPAT_TARGET", "dtx")
)

const (
	// Bounds that keep a broken coordinator from hanging the suite (go test -timeout is the outer one).
	startTimeout = 30 * time.Second // dtx start-up until /api/ping answers
	callTimeout  = 15 * time.Second // one call to the coordinator or a branch
	settleWithin = 20 * time.Second // a transaction reaching its final state
)

// Log of the coordinator child process (dtx, or DTM): kept in memory and printed when a test fails.
var dtxLog lockedBuffer

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := strings.Split(strings.TrimRight(b.buf.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(wfHostEnv); cfg != "" {
		// This test binary, started again by a workflow test as a separate workflow host process.
		os.Exit(hostMain(cfg))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// The SDK logs expected failures (FAILURE answers) at error level with stacks: quiet unless asked.
	dtmlogger.InitLog(envOr("DTX_COMPAT_CLIENT_LOG", "fatal"))
	// dtmcli's HTTP client has no timeout by default: bound every call the SDK makes.
	dtmcli.GetRestyClient().SetTimeout(callTimeout)

	if err := setupDB(); err != nil {
		fmt.Fprintf(os.Stderr, "compat: %v\n", err)
		return 1
	}
	defer closeDB()

	stopBusi, err := startBusi()
	if err != nil {
		fmt.Fprintf(os.Stderr, "compat: starting the Go branch services: %v\n", err)
		return 1
	}
	defer stopBusi()

	switch target {
	case "dtx", "dtm":
	default:
		fmt.Fprintf(os.Stderr, "compat: DTX_COMPAT_TARGET is %q, want dtx or dtm\n", target)
		return 1
	}
	if target == "dtm" {
		// DTM has no test endpoint: the tests that need a cron pass wait for its own cron.
		realCron = true
	}
	started := false
	if ext := os.Getenv("DTX_COMPAT_DTM_HTTP"); ext != "" {
		// An already running coordinator (dtx, or DTM itself to check the suite): nothing is started.
		dtmHTTP = strings.TrimRight(ext, "/")
		dtmGrpc = os.Getenv("DTX_COMPAT_DTM_GRPC")
		fmt.Printf("compat: using the running coordinator %s (gRPC %q)\n", dtmHTTP, dtmGrpc)
	} else {
		start := startDtx
		if target == "dtm" {
			start = startDtm
		}
		stop, err := start()
		if err != nil {
			fmt.Fprintf(os.Stderr, "compat: %v\n", err)
			if t := dtxLog.tail(40); t != "" {
				fmt.Fprintf(os.Stderr, "--- %s log (last lines) ---\n%s\n", target, t)
			}
			return 1
		}
		defer stop()
		started = true
	}
	grpcSkip = probeGrpc(testAPI != "")
	if grpcSkip != "" {
		fmt.Printf("compat: gRPC tests will be SKIPPED: %s\n", grpcSkip)
	}
	stopHost, err := startLocalWorkflowHost()
	if err != nil {
		fmt.Fprintf(os.Stderr, "compat: starting the workflow host: %v\n", err)
		return 1
	}
	defer stopHost()

	code := m.Run()
	if code != 0 && started {
		fmt.Fprintf(os.Stderr, "--- %s log (last lines) ---\n%s\n", target, dtxLog.tail(60))
	}
	return code
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// repoRoot is the dtx repository this module lives in (compat/go → ../..).
func repoRoot() string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return root
}

// freePort asks the kernel for a port that is free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startDtx runs `node packages/server/dist/src/cli.js serve` on free ports with a SQLite store in a temp
// dir and the test endpoints on, waits for /api/ping, and returns the function that stops it.
func startDtx() (stop func(), err error) {
	root := repoRoot()
	cli := filepath.Join(root, "packages", "server", "dist", "src", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		return nil, fmt.Errorf("%s is missing: build dtx first (`npm run build` at the repository root)", cli)
	}
	node := envOr("DTX_NODE", "node")
	dir, err := os.MkdirTemp("", "dtx-compat-")
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	grpcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(node, cli, "serve")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("HTTP_PORT=%d", httpPort),
		"HTTP_HOST=127.0.0.1",
		fmt.Sprintf("GRPC_PORT=%d", grpcPort),
		"STORE_DRIVER=sqlite",
		"STORE_SQLITE_PATH="+filepath.Join(dir, "dtx.sqlite"),
		"DTX_TEST_MODE=1",
		"LOG_LEVEL="+envOr("DTX_COMPAT_LOG_LEVEL", "info"),
	)
	cmd.Env = append(cmd.Env, authEnv()...)
	exited, stop, err := spawn(cmd, dir)
	if err != nil {
		return nil, fmt.Errorf("starting dtx with %s: %w", node, err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	if err := waitPing(base, "dtx", exited, stop); err != nil {
		return nil, err
	}
	dtmHTTP = base + "/api/dtmsvr"
	dtmGrpc = fmt.Sprintf("127.0.0.1:%d", grpcPort)
	testAPI = base + "/api/dtx-test"
	useTokens()
	fmt.Printf("compat: dtx (%s) serving HTTP %s, gRPC %s\n", cli, base, dtmGrpc)
	return stop, nil
}

// spawn starts a coordinator child process whose output goes to dtxLog, in its own process group (so
// stop reaches anything it starts) and killed if this test binary dies (go test -timeout, a crash), so no
// coordinator outlives the run. stop ends it (SIGTERM, then SIGKILL) and removes dir.
func spawn(cmd *exec.Cmd, dir string) (exited chan error, stop func(), err error) {
	cmd.Stdout = &dtxLog
	cmd.Stderr = &dtxLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	exited = make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		os.RemoveAll(dir)
	}
	return exited, stop, nil
}

// waitPing polls base+/api/ping until the coordinator answers pong; on failure it stops it.
func waitPing(base, name string, exited chan error, stop func()) error {
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case err := <-exited:
			exited <- err
			stop()
			return fmt.Errorf("%s exited during start-up: %v", name, err)
		default:
		}
		resp, err := client.Get(base + "/api/ping")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(body), "pong") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("%s did not answer %s/api/ping within %s", name, base, startTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// probeGrpc tells whether to run the gRPC tests: "" to run them, otherwise why they are skipped. They are
// skipped only while the coordinator has no gRPC API. For the dtx this suite starts, that is decided by
// the build: once it contains the gRPC API (dist/src/api/grpc), the gRPC tests always run, and a
// coordinator that does not answer over gRPC fails them.
func probeGrpc(started bool) string {
	if dtmGrpc == "" {
		return "no gRPC address for the coordinator (DTX_COMPAT_DTM_GRPC is unset)"
	}
	if started {
		api := filepath.Join(repoRoot(), "packages", "server", "dist", "src", "api", "grpc")
		if _, err := os.Stat(api); err != nil {
			return fmt.Sprintf("this dtx build has no gRPC API yet (%s is missing)", api)
		}
		return ""
	}
	conn, err := net.DialTimeout("tcp", dtmGrpc, 3*time.Second)
	if err != nil {
		return fmt.Sprintf("nothing listens on the gRPC port %s (%v): the coordinator has no gRPC API yet", dtmGrpc, err)
	}
	conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = dtmgimp.MustGetDtmClient(dtmGrpc).NewGid(ctx, &emptypb.Empty{})
	if status.Code(err) == codes.Unimplemented {
		return fmt.Sprintf("the coordinator answers Unimplemented to /dtmgimp.Dtm/NewGid: it has no gRPC API yet (%v)", err)
	}
	// Any other failure of a listening gRPC port is a bug, not a missing feature: the tests run and fail.
	return ""
}

func catchPanic(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("panic: %w", e)
			} else {
				err = fmt.Errorf("panic: %v", r)
			}
		}
	}()
	f()
	return nil
}

// needGrpc skips a gRPC test while the coordinator has no gRPC API.
func needGrpc(t *testing.T) {
	t.Helper()
	if grpcSkip != "" {
		t.Skipf("SKIPPED (gRPC): %s", grpcSkip)
	}
}

// realCron: with an external coordinator, wait for its own cron instead of skipping the tests that need one.
var realCron = os.Getenv("DTX_COMPAT_REAL_CRON") != ""

// needTestAPI skips a test that drives the cron through dtx's test endpoint, unless it may wait for the real cron.
func needTestAPI(t *testing.T) {
	t.Helper()
	if testAPI == "" && !realCron {
		t.Skip("needs dtx's test endpoint /api/dtx-test/cronOnce (the coordinator was not started by this suite); set DTX_COMPAT_REAL_CRON=1 to wait for its own cron instead")
	}
}

// ctxTimeout is a context for one SDK call.
func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}
