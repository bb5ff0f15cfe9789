package compat

// The branch services ("busi", as DTM calls them), in Go: the same business functions behind HTTP
// (net/http, dtmcli's barrier from the query string) and gRPC (grpc-go, dtmgrpc's barrier from the
// metadata). Every handler runs its business inside the sub-transaction barrier on MariaDB.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dtm-labs/dtm/client/dtmcli"
	"github.com/dtm-labs/dtm/client/dtmgrpc"
	"github.com/dtm-labs/dtm/client/dtmgrpc/dtmgimp"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// busiReq is the payload of every branch: which account, how much, and an optional forced result.
type busiReq struct {
	Account string  `json:"account"`
	Amount  float64 `json:"amount"`
	// Result "FAILURE" makes the handler do its work, then refuse: the local transaction rolls back and
	// the handler answers FAILURE (HTTP 409 / gRPC Aborted).
	Result string `json:"result,omitempty"`
}

// httpPayload and grpcPayload build the payload of a step for the two transports.
func httpPayload(account string, amount float64, result string) busiReq {
	return busiReq{Account: account, Amount: amount, Result: result}
}

func grpcPayload(account string, amount float64, result string) *structpb.Struct {
	s, err := structpb.NewStruct(map[string]any{"account": account, "amount": amount, "result": result})
	if err != nil {
		panic(err)
	}
	return s
}

func reqFromStruct(s *structpb.Struct) busiReq {
	f := s.GetFields()
	return busiReq{
		Account: f["account"].GetStringValue(),
		Amount:  f["amount"].GetNumberValue(),
		Result:  f["result"].GetStringValue(),
	}
}

// errRefused is what a handler returns when the payload asks it to fail.
var errRefused = fmt.Errorf("reason:refused by the compat test %w", dtmcli.ErrFailure)

// adjust changes an account inside the branch's local transaction. It refuses (FAILURE) when the
// account would go below zero, counting frozen (negative trading) amounts.
func adjust(tx *sql.Tx, r busiReq, dBalance, dTrading float64) error {
	res, err := tx.Exec(`UPDATE account SET balance = balance + ?, trading_balance = trading_balance + ?, update_time = now()
		WHERE name = ? AND balance + ? + LEAST(trading_balance + ?, 0) >= 0`, dBalance, dTrading, r.Account, dBalance, dTrading)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("insufficient balance or no account %q %w", r.Account, dtmcli.ErrFailure)
	}
	if r.Result == dtmcli.ResultFailure {
		return errRefused
	}
	return nil
}

// resultOngoingOnce as busiReq.Result: the first call of that branch answers ONGOING without doing
// anything, later calls proceed.
const resultOngoingOnce = "ONGOING_ONCE"

var ongoingSeen sync.Map // "<gid>/<method>/<op>" → true once answered ONGOING

func ongoingOnce(gid, method, op string, r busiReq) error {
	if r.Result != resultOngoingOnce {
		return nil
	}
	if _, seen := ongoingSeen.LoadOrStore(gid+"/"+method+"/"+op, true); seen {
		return nil
	}
	return fmt.Errorf("not ready yet %w", dtmcli.ErrOngoing)
}

// resultHoldOnce as busiReq.Result: the first call of that branch is held, before its barrier and its
// business, until the test releases it (releaseHold: it then proceeds) or its caller goes away (the
// connection closes, e.g. the workflow host was killed: it then does nothing). Later calls proceed.
const resultHoldOnce = "HOLD_ONCE"

var holds = struct {
	mu      sync.Mutex
	seen    map[string]bool          // "<gid>/<method>/<op>" → held once already
	release map[string]chan struct{} // gid → closed by releaseHold
}{seen: map[string]bool{}, release: map[string]chan struct{}{}}

func holdChan(gid string) chan struct{} {
	ch := holds.release[gid]
	if ch == nil {
		ch = make(chan struct{})
		holds.release[gid] = ch
	}
	return ch
}

func holdOnce(ctx context.Context, gid, method, op string, r busiReq) error {
	if r.Result != resultHoldOnce {
		return nil
	}
	holds.mu.Lock()
	key := gid + "/" + method + "/" + op
	if holds.seen[key] {
		holds.mu.Unlock()
		return nil
	}
	holds.seen[key] = true
	ch := holdChan(gid)
	holds.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("held call of %s abandoned by its caller: %w", key, ctx.Err())
	}
}

// releaseHold lets the held call of gid (and any later one) proceed.
func releaseHold(gid string) {
	holds.mu.Lock()
	defer holds.mu.Unlock()
	ch := holdChan(gid)
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// busiFuncs: the business of each branch, by method name (the same names over HTTP and gRPC).
var busiFuncs = map[string]func(tx *sql.Tx, r busiReq) error{
	// saga, and msg (TransIn)
	"TransOut":       func(tx *sql.Tx, r busiReq) error { return adjust(tx, r, -r.Amount, 0) },
	"TransOutRevert": func(tx *sql.Tx, r busiReq) error { return adjust(tx, r, r.Amount, 0) },
	"TransIn":        func(tx *sql.Tx, r busiReq) error { return adjust(tx, r, r.Amount, 0) },
	"TransInRevert":  func(tx *sql.Tx, r busiReq) error { return adjust(tx, r, -r.Amount, 0) },
	// tcc: try moves the amount into trading_balance (frozen when negative), confirm moves it to balance,
	// cancel gives it back.
	"TransOutTry":     func(tx *sql.Tx, r busiReq) error { return adjust(tx, r, 0, -r.Amount) },
	"TransOutConfirm": func(tx *sql.Tx, r busiReq) error { return adjust(tx, r, -r.Amount, r.Amount) },
	"TransOutCancel":  func(tx *sql.Tx, r busiReq) error { return adjust(tx, r, 0, r.Amount) },
	"TransInTry":      func(tx *sql.Tx, r busiReq) error { return adjust(tx, r, 0, r.Amount) },
	"TransInConfirm":  func(tx *sql.Tx, r busiReq) error { return adjust(tx, r, r.Amount, -r.Amount) },
	"TransInCancel":   func(tx *sql.Tx, r busiReq) error { return adjust(tx, r, 0, -r.Amount) },
}

// localDebit is the local business of msg DoAndSubmitDB: take the amount from the paying account.
func localDebit(account string, amount float64) dtmcli.BarrierBusiFunc {
	r := busiReq{Account: account, Amount: amount}
	return func(tx *sql.Tx) error { return adjust(tx, r, -amount, 0) }
}

// ---------------------------------------------------------------- call log

// calls records every branch call as "<Method>/<op>" per gid, in arrival order.
var calls = struct {
	mu sync.Mutex
	m  map[string][]string
}{m: map[string][]string{}}

func record(gid, method, op string) {
	calls.mu.Lock()
	defer calls.mu.Unlock()
	calls.m[gid] = append(calls.m[gid], method+"/"+op)
}

func callsOf(gid string) []string {
	calls.mu.Lock()
	defer calls.mu.Unlock()
	return append([]string(nil), calls.m[gid]...)
}

// waitCalls waits until gid has received at least n branch calls.
func waitCalls(t *testing.T, gid string, n int) {
	t.Helper()
	deadline := time.Now().Add(settleWithin)
	for len(callsOf(gid)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s received the branch calls %v, want at least %d", gid, callsOf(gid), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertCallsSet checks the branch calls a gid received, in any order.
func assertCallsSet(t *testing.T, gid string, want ...string) {
	t.Helper()
	got := callsOf(gid)
	sort.Strings(got)
	want = append([]string(nil), want...)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("branch calls of %s (any order):\n  got  %v\n  want %v", gid, got, want)
	}
}

// assertCalls checks the exact sequence of branch calls a gid received.
func assertCalls(t *testing.T, gid string, want ...string) {
	t.Helper()
	got := callsOf(gid)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("branch calls of %s:\n  got  %v\n  want %v", gid, got, want)
	}
}

// ---------------------------------------------------------------- HTTP

func writeResult(w http.ResponseWriter, err error) {
	var result any = dtmcli.MapSuccess
	if err != nil {
		result = err
	}
	code, body := dtmcli.Result2HttpJSON(result)
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func httpBranch(method string, f func(tx *sql.Tx, r busiReq) error) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		record(q.Get("gid"), method, q.Get("op"))
		var r busiReq
		body, err := io.ReadAll(req.Body)
		if err == nil && len(body) > 0 {
			err = json.Unmarshal(body, &r)
		}
		if err == nil {
			err = ongoingOnce(q.Get("gid"), method, q.Get("op"), r)
		}
		if err == nil {
			err = holdOnce(req.Context(), q.Get("gid"), method, q.Get("op"), r)
		}
		var bb *dtmcli.BranchBarrier
		if err == nil {
			bb, err = dtmcli.BarrierFromQuery(q)
		}
		if err == nil {
			err = bb.CallWithDB(db, func(tx *sql.Tx) error { return f(tx, r) })
		}
		writeResult(w, err)
	}
}

// httpQueryPrepared is the msg back-check: DTM's QueryPrepared trick on the barrier table (spec §9.5).
func httpQueryPrepared(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	record(q.Get("gid"), "QueryPrepared", q.Get("op"))
	bb, err := dtmcli.BarrierFromQuery(q)
	if err == nil {
		err = bb.QueryPrepared(db)
	}
	writeResult(w, err)
}

// ---------------------------------------------------------------- gRPC

// The gRPC service busi.Busi is declared by hand (no generated code): every method takes a
// google.protobuf.Struct and returns google.protobuf.Empty, so the payloads are real protobuf bytes.
func grpcBranch(method string, f func(tx *sql.Tx, r busiReq) error) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: method,
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := &structpb.Struct{}
			if err := dec(in); err != nil {
				return nil, err
			}
			tb := dtmgimp.TransBaseFromGrpc(ctx)
			record(tb.Gid, method, tb.Op)
			r := reqFromStruct(in)
			err := ongoingOnce(tb.Gid, method, tb.Op, r)
			if err == nil {
				err = holdOnce(ctx, tb.Gid, method, tb.Op, r)
			}
			var bb *dtmcli.BranchBarrier
			if err == nil {
				bb, err = dtmgrpc.BarrierFromGrpc(ctx)
			}
			if err == nil {
				err = bb.CallWithDB(db, func(tx *sql.Tx) error { return f(tx, r) })
			}
			if err != nil {
				return nil, dtmgrpc.DtmError2GrpcError(err)
			}
			return &emptypb.Empty{}, nil
		},
	}
}

func grpcQueryPrepared(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := &emptypb.Empty{}
	if err := dec(in); err != nil {
		return nil, err
	}
	tb := dtmgimp.TransBaseFromGrpc(ctx)
	record(tb.Gid, "QueryPrepared", tb.Op)
	bb, err := dtmgrpc.BarrierFromGrpc(ctx)
	if err == nil {
		err = bb.QueryPrepared(db)
	}
	if err != nil {
		return nil, dtmgrpc.DtmError2GrpcError(err)
	}
	return &emptypb.Empty{}, nil
}

// ---------------------------------------------------------------- servers

// startBusi starts both branch services on free 127.0.0.1 ports.
func startBusi() (stop func(), err error) {
	mux := http.NewServeMux()
	desc := grpc.ServiceDesc{ServiceName: "busi.Busi", HandlerType: (*any)(nil)}
	for name, f := range busiFuncs {
		mux.HandleFunc("/api/busi/"+name, httpBranch(name, f))
		desc.Methods = append(desc.Methods, grpcBranch(name, f))
	}
	mux.HandleFunc("/api/busi/QueryPrepared", httpQueryPrepared)
	desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: "QueryPrepared", Handler: grpcQueryPrepared})

	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		hl.Close()
		return nil, err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(hl) }()
	gs := grpc.NewServer()
	gs.RegisterService(&desc, struct{}{})
	go func() { _ = gs.Serve(gl) }()

	busiHTTP = "http://" + hl.Addr().String() + "/api/busi"
	busiGrpc = gl.Addr().String()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			gs.Stop()
		}
	}, nil
}

// grpcURL is the DTM gRPC branch URL of a busi method: host:port/package.Service/Method.
func grpcURL(method string) string { return busiGrpc + "/busi.Busi/" + method }

// httpURL is the HTTP branch URL of a busi method.
func httpURL(method string) string { return busiHTTP + "/" + method }
