package compat

// One set of scenarios, two transports: each scenario runs as subtest "HTTP" (dtmcli, net/http
// branches) and "gRPC" (dtmgrpc, grpc-go branches). The transports differ only in how they use the SDK.

import (
	"errors"
	"strings"
	"testing"

	"github.com/dtm-labs/dtm/client/dtmcli"
	"github.com/dtm-labs/dtm/client/dtmgrpc"
	"github.com/go-resty/resty/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

type transport interface {
	// protocol is the value the coordinator stores for transactions started this way.
	protocol() string
	newGid(t *testing.T) string
	// submitSaga submits TransOut(a.out) then TransIn(a.in), 30 each.
	submitSaga(t *testing.T, gid string, a accounts, o sagaOpts) error
	// msgDoAndSubmit runs DoAndSubmitDB with local as the local business and TransIn(a.in, 30) as the message.
	msgDoAndSubmit(t *testing.T, gid string, a accounts, local dtmcli.BarrierBusiFunc) error
	// msgPrepare only prepares that message (with its QueryPrepared back-check), as if the app then crashed.
	msgPrepare(t *testing.T, gid string, a accounts) error
	// isFailure tells whether err is the coordinator's FAILURE answer (HTTP 409 / gRPC Aborted).
	isFailure(err error) bool
	// tcc runs a TCC with the branches TransOut(a.out) and TransIn(a.in), 30 each; TransIn's try answers inResult.
	tcc(t *testing.T, gid string, a accounts, inResult string) error
}

type sagaOpts struct {
	inResult   string // what TransIn answers (busiReq.Result)
	waitResult bool
	concurrent bool
}

func forEachTransport(t *testing.T, scenario func(t *testing.T, tr transport)) {
	t.Run("HTTP", func(t *testing.T) { scenario(t, httpTransport{}) })
	t.Run("gRPC", func(t *testing.T) {
		needGrpc(t)
		scenario(t, grpcTransport{})
	})
}

// ---------------------------------------------------------------- HTTP: dtmcli

type httpTransport struct{}

func (httpTransport) protocol() string { return "http" }

func (httpTransport) newGid(t *testing.T) string {
	var gid string
	if err := catchPanic(func() { gid = dtmcli.MustGenGid(dtmHTTP) }); err != nil {
		t.Fatalf("newGid over HTTP: %v", err)
	}
	return gid
}

func (httpTransport) submitSaga(t *testing.T, gid string, a accounts, o sagaOpts) error {
	saga := dtmcli.NewSaga(dtmHTTP, gid).
		Add(httpURL("TransOut"), httpURL("TransOutRevert"), httpPayload(a.out, 30, "")).
		Add(httpURL("TransIn"), httpURL("TransInRevert"), httpPayload(a.in, 30, o.inResult))
	saga.WaitResult = o.waitResult
	if o.concurrent {
		saga.SetConcurrent()
	}
	return saga.Submit()
}

func (httpTransport) msgDoAndSubmit(t *testing.T, gid string, a accounts, local dtmcli.BarrierBusiFunc) error {
	msg := dtmcli.NewMsg(dtmHTTP, gid).Add(httpURL("TransIn"), httpPayload(a.in, 30, ""))
	return msg.DoAndSubmitDB(httpURL("QueryPrepared"), db, local)
}

func (httpTransport) msgPrepare(t *testing.T, gid string, a accounts) error {
	msg := dtmcli.NewMsg(dtmHTTP, gid).Add(httpURL("TransIn"), httpPayload(a.in, 30, ""))
	return msg.Prepare(httpURL("QueryPrepared"))
}

func (httpTransport) isFailure(err error) bool {
	// dtmcli turns any non-200 reply, or one whose body says FAILURE, into an error holding the body.
	return err != nil && strings.Contains(err.Error(), dtmcli.ResultFailure)
}

func (httpTransport) tcc(t *testing.T, gid string, a accounts, inResult string) error {
	return dtmcli.TccGlobalTransaction(dtmHTTP, gid, func(tcc *dtmcli.Tcc) (*resty.Response, error) {
		_, err := tcc.CallBranch(httpPayload(a.out, 30, ""), httpURL("TransOutTry"), httpURL("TransOutConfirm"), httpURL("TransOutCancel"))
		if err != nil {
			return nil, err
		}
		return tcc.CallBranch(httpPayload(a.in, 30, inResult), httpURL("TransInTry"), httpURL("TransInConfirm"), httpURL("TransInCancel"))
	})
}

// ---------------------------------------------------------------- gRPC: dtmgrpc

type grpcTransport struct{}

func (grpcTransport) protocol() string { return "grpc" }

func (grpcTransport) newGid(t *testing.T) string {
	var gid string
	if err := catchPanic(func() { gid = dtmgrpc.MustGenGid(dtmGrpc) }); err != nil {
		t.Fatalf("NewGid over gRPC: %v", err)
	}
	return gid
}

func (grpcTransport) submitSaga(t *testing.T, gid string, a accounts, o sagaOpts) error {
	saga := dtmgrpc.NewSagaGrpcWithContext(ctxTimeout(t), dtmGrpc, gid).
		Add(grpcURL("TransOut"), grpcURL("TransOutRevert"), grpcPayload(a.out, 30, "")).
		Add(grpcURL("TransIn"), grpcURL("TransInRevert"), grpcPayload(a.in, 30, o.inResult))
	saga.WaitResult = o.waitResult
	if o.concurrent {
		saga.EnableConcurrent()
	}
	return saga.Submit()
}

func (grpcTransport) msgDoAndSubmit(t *testing.T, gid string, a accounts, local dtmcli.BarrierBusiFunc) error {
	msg := dtmgrpc.NewMsgGrpc(dtmGrpc, gid).Add(grpcURL("TransIn"), grpcPayload(a.in, 30, ""))
	msg.Context = ctxTimeout(t)
	return msg.DoAndSubmitDB(grpcURL("QueryPrepared"), db, local)
}

func (grpcTransport) msgPrepare(t *testing.T, gid string, a accounts) error {
	msg := dtmgrpc.NewMsgGrpc(dtmGrpc, gid).Add(grpcURL("TransIn"), grpcPayload(a.in, 30, ""))
	msg.Context = ctxTimeout(t)
	return msg.Prepare(grpcURL("QueryPrepared"))
}

func (grpcTransport) isFailure(err error) bool {
	return status.Code(err) == codes.Aborted && errors.Is(dtmgrpc.GrpcError2DtmError(err), dtmcli.ErrFailure)
}

func (grpcTransport) tcc(t *testing.T, gid string, a accounts, inResult string) error {
	ctx := ctxTimeout(t)
	return dtmgrpc.TccGlobalTransaction2(dtmGrpc, gid, func(tcc *dtmgrpc.TccGrpc) { tcc.Context = ctx }, func(tcc *dtmgrpc.TccGrpc) error {
		err := tcc.CallBranch(grpcPayload(a.out, 30, ""), grpcURL("TransOutTry"), grpcURL("TransOutConfirm"), grpcURL("TransOutCancel"), &emptypb.Empty{})
		if err != nil {
			return err
		}
		return tcc.CallBranch(grpcPayload(a.in, 30, inResult), grpcURL("TransInTry"), grpcURL("TransInConfirm"), grpcURL("TransInCancel"), &emptypb.Empty{})
	})
}
