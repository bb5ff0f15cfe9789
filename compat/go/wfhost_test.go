package compat

// Workflow hosts. DTM's Go workflow client (client/workflow of github.com/dtm-labs/dtm v1.19.0) runs
// the workflow function in the process that calls workflow.ExecuteCtx, the "host", and the coordinator
// calls the host back (its resume endpoint) to finish a workflow the host left unfinished. The
// workflows below are registered in two kinds of hosts:
//
//   - this test process (startLocalWorkflowHost), for the scenarios where one host runs the workflow;
//   - a separate host process: this same test binary started again with DTX_COMPAT_WFHOST set
//     (startHost / hostMain), which the crash scenario SIGKILLs between two steps and restarts, and the
//     late-host scenario runs next to this one.
//
// Each host serves both resume endpoints: HTTP POST /api/wf/resume (the workflow.InitHTTP callback)
// and gRPC workflow.Workflow/Execute (workflow.InitGrpc). The client package keeps its configuration in
// globals, so one process runs one protocol at a time (workflow.SetProtocolForTest switches it).

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dtm-labs/dtm/client/dtmcli"
	"github.com/dtm-labs/dtm/client/dtmcli/dtmimp"
	dtmlogger "github.com/dtm-labs/dtm/client/dtmcli/logger"
	"github.com/dtm-labs/dtm/client/dtmgrpc/dtmgimp"
	"github.com/dtm-labs/dtm/client/workflow"
	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// ---------------------------------------------------------------- the workflows

const (
	// wfTransfer: 01 TransOut (compensated by TransOutRevert), 02 TransIn (compensated by
	// TransInRevert), 03 a local step that returns the receipt, or FAILURE when the input says refuse.
	wfTransfer = "compat-transfer"
	// wfOngoing: wfTransfer without input (the accounts are named after the gid, as newAccounts
	// does), whose TransIn answers ONGOING the first time.
	wfOngoing = "compat-ongoing"
	// wfXa: 01 and 02 are local XA transactions on MariaDB (DoXa: debit out, credit in), committed or
	// rolled back by the client after the function ends; 03 as in wfTransfer.
	wfXa = "compat-xa"
)

// wfInput is the input of both workflows (JSON).
type wfInput struct {
	Out    string  `json:"out"`
	In     string  `json:"in"`
	Amount float64 `json:"amount"`
	// InResult is what TransIn is asked to answer (busiReq.Result: FAILURE, HOLD_ONCE).
	InResult string `json:"in_result,omitempty"`
	// Refuse makes the last, local step answer FAILURE.
	Refuse bool `json:"refuse,omitempty"`
}

func (in wfInput) bytes() []byte {
	b, err := json.Marshal(in)
	if err != nil {
		panic(err)
	}
	return b
}

// receipt is the result of a workflow that succeeded.
func (in wfInput) receipt() string {
	return fmt.Sprintf("moved %v from %s to %s", in.Amount, in.Out, in.In)
}

func transferWorkflow(wf *workflow.Workflow, data []byte) ([]byte, error) {
	var in wfInput
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("bad input %q: %v %w", data, err, dtmcli.ErrFailure)
	}
	if err := busiStep(wf, "TransOut", "TransOutRevert", busiReq{Account: in.Out, Amount: in.Amount}); err != nil {
		return nil, err
	}
	if err := busiStep(wf, "TransIn", "TransInRevert", busiReq{Account: in.In, Amount: in.Amount, Result: in.InResult}); err != nil {
		return nil, err
	}
	return receiptStep(wf, in)
}

func ongoingWorkflow(wf *workflow.Workflow, data []byte) ([]byte, error) {
	if len(data) != 0 {
		return nil, fmt.Errorf("%s takes no input, got %q %w", wfOngoing, data, dtmcli.ErrFailure)
	}
	return transferWorkflow(wf, ongoingInput(wf.Gid).bytes())
}

// ongoingInput is what wfOngoing does for gid.
func ongoingInput(gid string) wfInput {
	return wfInput{Out: gid + "/out", In: gid + "/in", Amount: 30, InResult: resultOngoingOnce}
}

func xaWorkflow(wf *workflow.Workflow, data []byte) ([]byte, error) {
	var in wfInput
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("bad input %q: %v %w", data, err, dtmcli.ErrFailure)
	}
	for _, leg := range []struct {
		account string
		delta   float64
	}{{in.Out, -in.Amount}, {in.In, in.Amount}} {
		var session int64
		_, err := wf.NewBranch().DoXa(xaDBConf(), func(xdb *sql.DB) ([]byte, error) {
			// xdb holds the one connection DoXa runs the XA transaction on (sequential statements reuse it)
			if err := xdb.QueryRow("SELECT CONNECTION_ID()").Scan(&session); err != nil {
				return nil, err
			}
			res, err := xdb.Exec("UPDATE account SET balance = balance + ? WHERE name = ? AND balance + ? >= 0", leg.delta, leg.account, leg.delta)
			if err != nil {
				return nil, err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return nil, fmt.Errorf("insufficient balance or no account %q (%v) %w", leg.account, err, dtmcli.ErrFailure)
			}
			return nil, nil
		})
		if session != 0 {
			if werr := waitSessionGone(session); werr != nil {
				return nil, werr
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return receiptStep(wf, in)
}

// waitSessionGone waits (polling, with a deadline) until the MariaDB session that prepared an XA step is
// gone. DTM's DoXa closes that session right after XA PREPARE without waiting for the server, and its phase 2
// (XaHandlePhase2) runs XA COMMIT / XA ROLLBACK from another connection and takes XAER_NOTA for "already done".
// But MariaDB answers XAER_NOTA while the prepared transaction is still bound to its closing session: the commit
// is then recorded as done and the branch is left prepared (its locks held). The window is the time between the
// prepare and the phase 2 — for the newest XA step, two quick records with the coordinator — so it shows only
// under load (a probe calling XaHandleLocalTrans then XA COMMIT at once hit XAER_NOTA in 61 and 73 of 300 runs,
// none after waiting here). This is DTM's client and MariaDB, whatever the coordinator; waiting here keeps the
// scenario about the coordinator. dtx's own SDK checks XA RECOVER on XAER_NOTA instead (xaPhase2).
func waitSessionGone(id int64) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the XA session %d of a prepared step is still open after 15 s", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receiptStep is the last step of both workflows: a local step (Do), recorded like the others.
func receiptStep(wf *workflow.Workflow, in wfInput) ([]byte, error) {
	return wf.NewBranch().Do(func(bb *dtmcli.BranchBarrier) ([]byte, error) {
		if in.Refuse {
			return nil, errRefused
		}
		return []byte(in.receipt()), nil
	})
}

// busiStep is one branch of the workflow: the action on a busi service, its compensation registered
// first (as DTM's examples do), over the workflow's protocol.
func busiStep(wf *workflow.Workflow, action, compensate string, r busiReq) error {
	wf.NewBranch().OnRollback(func(bb *dtmcli.BranchBarrier) error {
		return callBusi(wf, compensate, busiReq{Account: r.Account, Amount: r.Amount})
	})
	return callBusi(wf, action, r)
}

// callBusi calls a busi method through the workflow, which records its outcome (the action) or lets the
// phase-2 step record it (a compensation): HTTP through wf.NewRequest(), gRPC through a connection with
// workflow.Interceptor.
func callBusi(wf *workflow.Workflow, method string, r busiReq) error {
	if wf.Protocol == dtmimp.ProtocolGRPC {
		return busiConn().Invoke(wf.Context, "/busi.Busi/"+method, grpcPayload(r.Account, r.Amount, r.Result), &emptypb.Empty{})
	}
	_, err := wf.NewRequest().SetBody(r).Post(httpURL(method))
	return err
}

var (
	busiConnOnce sync.Once
	busiConnVal  *grpc.ClientConn
)

func busiConn() *grpc.ClientConn {
	busiConnOnce.Do(func() {
		c, err := grpc.Dial(busiGrpc, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithUnaryInterceptor(workflow.Interceptor))
		if err != nil {
			panic(err)
		}
		busiConnVal = c
	})
	return busiConnVal
}

// xaDBConf is the MariaDB of the XA steps: DTX_COMPAT_XA_DB (a mysql://user:pass@host:port URL, like the
// DTX_MYSQL_URL scripts/services.sh prints), else the server of DTX_COMPAT_MYSQL; database dtx_compat.
func xaDBConf() dtmcli.DBConf {
	conf := dtmcli.DBConf{Driver: dtmimp.DBTypeMysql, Db: "dtx_compat"}
	if u := os.Getenv("DTX_COMPAT_XA_DB"); u != "" {
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "mysql" {
			panic(fmt.Sprintf("DTX_COMPAT_XA_DB %q: want mysql://user:password@host:port (%v)", u, err))
		}
		conf.Host = p.Hostname()
		conf.Port, _ = strconv.ParseInt(p.Port(), 10, 64)
		conf.User = p.User.Username()
		conf.Password, _ = p.User.Password()
	} else {
		c, err := mysql.ParseDSN(envOr("DTX_COMPAT_MYSQL", "dtx:dtx@tcp(127.0.0.1:3306)/"))
		if err != nil {
			panic(fmt.Sprintf("DTX_COMPAT_MYSQL: %v", err))
		}
		host, port, _ := net.SplitHostPort(c.Addr)
		conf.Host = host
		conf.Port, _ = strconv.ParseInt(port, 10, 64)
		conf.User = c.User
		conf.Password = c.Passwd
	}
	if conf.Port == 0 {
		conf.Port = 3306
	}
	return conf
}

// ---------------------------------------------------------------- serving a host

// hostServer is the resume endpoints of one host, and what it saw.
type hostServer struct {
	httpURL  string // the HTTP resume callback
	grpcHost string // host:port of the gRPC resume callback
	// noResume: gids whose resume callbacks answer ONGOING without running anything (the test runs them
	// itself and does not want the coordinator's cron to interfere).
	noResume sync.Map
	// refuseAll: every resume callback answers ONGOING.
	refuseAll bool
	// onResume is told of every resume callback: "http POST|GET <gid> <op> <branch_id> <input>" or
	// "grpc Execute <gid> <op> <branch_id>".
	onResume func(string)
	stop     func()
}

// serveHost listens on httpAddr and grpcAddr ("127.0.0.1:0" for free ports), initialises the workflow
// client with both callbacks and registers the workflows. The protocol stays the last one initialised
// (HTTP): call workflow.SetProtocolForTest to choose.
func serveHost(httpAddr, grpcAddr string, onResume func(string)) (*hostServer, error) {
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return nil, err
	}
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		hl.Close()
		return nil, err
	}
	h := &hostServer{
		httpURL:  "http://" + hl.Addr().String() + "/api/wf/resume",
		grpcHost: gl.Addr().String(),
		onResume: onResume,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/wf/resume", h.resumeHTTP)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	gs := grpc.NewServer(grpc.UnaryInterceptor(h.resumeGrpc))
	workflow.InitGrpc(dtmGrpc, h.grpcHost, gs)
	workflow.InitHTTP(dtmHTTP, h.httpURL)
	go func() { _ = hs.Serve(hl) }()
	go func() { _ = gs.Serve(gl) }()
	h.stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		gs.Stop()
	}
	return h, nil
}

func (h *hostServer) refusesResume(gid string) bool {
	_, ok := h.noResume.Load(gid)
	return ok || h.refuseAll
}

// resumeHTTP is DTM's HTTP resume callback: POST (GET for an empty input) with gid, trans_type,
// branch_id 00 and op = the workflow's name in the query, the input as the body.
func (h *hostServer) resumeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	body, err := io.ReadAll(r.Body)
	if h.onResume != nil {
		h.onResume(fmt.Sprintf("http %s %s %s %s %q", r.Method, q.Get("gid"), q.Get("op"), q.Get("branch_id"), body))
	}
	if h.refusesResume(q.Get("gid")) {
		writeResult(w, fmt.Errorf("this host does not resume %s %w", q.Get("gid"), dtmcli.ErrOngoing))
		return
	}
	if err == nil {
		_, err = workflow.ExecuteCtx(r.Context(), q.Get("op"), q.Get("gid"), body)
	}
	writeResult(w, err) // nil → 200, FAILURE → 409, ONGOING → 425, else 500
}

// resumeGrpc sees the gRPC resume callback (/workflow.Workflow/Execute, served by the client package)
// before it runs.
func (h *hostServer) resumeGrpc(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if info.FullMethod == "/workflow.Workflow/Execute" {
		tb := dtmgimp.TransBaseFromGrpc(ctx)
		if h.onResume != nil {
			h.onResume(fmt.Sprintf("grpc Execute %s %s %s", tb.Gid, tb.Op, tb.BranchID))
		}
		if h.refusesResume(tb.Gid) {
			return nil, status.Errorf(codes.FailedPrecondition, "this host does not resume %s", tb.Gid)
		}
	}
	return handler(ctx, req)
}

var registerOnce sync.Once

func registerWorkflows() {
	registerOnce.Do(func() {
		for name, fn := range map[string]workflow.WfFunc2{wfTransfer: transferWorkflow, wfOngoing: ongoingWorkflow, wfXa: xaWorkflow} {
			if err := workflow.Register2(name, fn); err != nil {
				panic(err)
			}
		}
	})
}

// localHost is this test process as a workflow host; localResumes the resume callbacks it got, a line each.
var (
	localHost    *hostServer
	localResumes lockedBuffer
)

// startLocalWorkflowHost makes this test process a workflow host on free ports.
func startLocalWorkflowHost() (stop func(), err error) {
	localHost, err = serveHost("127.0.0.1:0", "127.0.0.1:0", func(s string) { fmt.Fprintln(&localResumes, s) })
	if err != nil {
		return nil, err
	}
	registerWorkflows()
	return localHost.stop, nil
}

// useProtocol makes the workflow client of this process use the protocol of tr.
func useProtocol(tr transport) {
	workflow.SetProtocolForTest(tr.protocol())
}

// ---------------------------------------------------------------- a separate host process

// wfHostEnv carries a hostConfig (JSON) to a host process; TestMain then runs hostMain instead of tests.
const wfHostEnv = "DTX_COMPAT_WFHOST"

type hostConfig struct {
	Protocol string `json:"protocol"`
	DtmHTTP  string `json:"dtm_http"`
	DtmGrpc  string `json:"dtm_grpc"`
	BusiHTTP string `json:"busi_http"`
	BusiGrpc string `json:"busi_grpc"`
	// HTTPAddr and GrpcAddr are where the resume endpoints listen (a restarted host reuses them: the
	// coordinator stored the callback at prepareWorkflow).
	HTTPAddr string `json:"http_addr"`
	GrpcAddr string `json:"grpc_addr"`
	// Exec: when set, the host executes this workflow at start (and keeps serving).
	Exec *hostExec `json:"exec,omitempty"`
	// NoResume: the host answers ONGOING to every resume callback.
	NoResume bool `json:"no_resume,omitempty"`
}

type hostExec struct {
	Name  string `json:"name"`
	Gid   string `json:"gid"`
	Input []byte `json:"input"`
}

// hostMain is a workflow host process. It prints one line per event on stdout:
// "listening", "resume <what onResume is told>", "executed <gid> ok <base64 result>" or
// "executed <gid> err <error>".
func hostMain(cfgJSON string) int {
	var cfg hostConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "wfhost: bad %s: %v\n", wfHostEnv, err)
		return 2
	}
	dtmlogger.InitLog(envOr("DTX_COMPAT_CLIENT_LOG", "fatal"))
	dtmcli.GetRestyClient().SetTimeout(callTimeout)
	dtmHTTP, dtmGrpc, busiHTTP, busiGrpc = cfg.DtmHTTP, cfg.DtmGrpc, cfg.BusiHTTP, cfg.BusiGrpc
	useTokens()
	var mu sync.Mutex
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", a...)
	}
	h, err := serveHost(cfg.HTTPAddr, cfg.GrpcAddr, func(s string) { say("resume %s", s) })
	if err != nil {
		fmt.Fprintf(os.Stderr, "wfhost: %v\n", err)
		return 2
	}
	if cfg.NoResume {
		h.refuseAll = true
	}
	registerWorkflows()
	workflow.SetProtocolForTest(cfg.Protocol)
	say("listening")
	if e := cfg.Exec; e != nil {
		ctx, cancel := context.WithTimeout(context.Background(), settleWithin)
		res, err := workflow.ExecuteCtx(ctx, e.Name, e.Gid, e.Input)
		cancel()
		if err != nil {
			say("executed %s err %s", e.Gid, strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			say("executed %s ok %s", e.Gid, base64.StdEncoding.EncodeToString(res))
		}
	}
	select {} // serve until killed
}

// host is a running host process, seen from the test.
type host struct {
	cmd    *exec.Cmd
	out    lockedBuffer
	exited chan struct{}
}

// hostAddrs picks the two ports a host process listens on (kept when it is restarted).
func hostAddrs(t *testing.T) (httpAddr, grpcAddr string) {
	t.Helper()
	p1, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	p2, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p1), fmt.Sprintf("127.0.0.1:%d", p2)
}

// startHost starts a host process (this test binary) and waits until it listens. It is killed at the
// end of the test at the latest.
func startHost(t *testing.T, cfg hostConfig) *host {
	t.Helper()
	cfg.DtmHTTP, cfg.DtmGrpc, cfg.BusiHTTP, cfg.BusiGrpc = dtmHTTP, dtmGrpc, busiHTTP, busiGrpc
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := &host{exited: make(chan struct{})}
	h.cmd = exec.Command(self)
	h.cmd.Env = append(os.Environ(), wfHostEnv+"="+string(b))
	h.cmd.Stdout = &h.out
	h.cmd.Stderr = &h.out
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the test binary
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("starting a workflow host: %v", err)
	}
	go func() { _ = h.cmd.Wait(); close(h.exited) }()
	t.Cleanup(func() {
		h.kill()
		if t.Failed() {
			t.Logf("workflow host (pid %d) output:\n%s", h.cmd.Process.Pid, h.out.tail(40))
		}
	})
	h.waitLine(t, "listening")
	return h
}

// kill SIGKILLs the host and waits until it is gone.
func (h *host) kill() {
	_ = h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.exited
}

// waitLine waits until the host printed a line starting with prefix, and returns that line.
func (h *host) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(settleWithin)
	for {
		for _, l := range strings.Split(h.out.tail(1000), "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		select {
		case <-h.exited:
			t.Fatalf("the workflow host exited before printing %q; output:\n%s", prefix, h.out.tail(40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the workflow host did not print %q within %s; output:\n%s", prefix, settleWithin, h.out.tail(40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// executed waits for the host's "executed <gid> ..." line: the result, or the error text.
func (h *host) executed(t *testing.T, gid string) (result []byte, errText string) {
	t.Helper()
	l := strings.TrimPrefix(h.waitLine(t, "executed "+gid+" "), "executed "+gid+" ")
	if r, ok := strings.CutPrefix(l, "ok "); ok {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r))
		if err != nil {
			t.Fatalf("host result %q: %v", r, err)
		}
		return b, ""
	} else if l == "ok" {
		return nil, ""
	}
	return nil, strings.TrimPrefix(l, "err ")
}
