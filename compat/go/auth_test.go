package compat

// The dtx this suite starts has tokens (Auth.Token, Auth.AdminToken): every scenario runs with
// authentication on, DTM's clients passing the client token the way a DTM user would — dtmcli through
// its resty client's headers, dtmgrpc through a unary client interceptor — and the suite's own reads of
// /query and the test endpoint passing the admin token. TestAuthRequired shows that the token is needed.

import (
	"context"
	"net/http"
	"testing"

	"github.com/dtm-labs/dtm/client/dtmcli"
	"github.com/dtm-labs/dtm/client/dtmgrpc"
	"github.com/dtm-labs/dtm/client/dtmgrpc/dtmgpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	// clientToken is the dtx Auth.Token of the services (dtmcli, dtmgrpc).
	clientToken = "compat-client-token-0123456789"
	// adminToken is the dtx Auth.AdminToken of the suite's own checks (/query is client, cronOnce admin).
	adminToken = "compat-admin-token-0123456789"
)

// authEnv is what startDtx adds to dtx's environment.
func authEnv() []string {
	return []string{"AUTH_TOKEN=" + clientToken, "AUTH_ADMIN_TOKEN=" + adminToken}
}

// useTokens makes DTM's Go clients and the suite's HTTP client send the tokens.
func useTokens() {
	// dtmcli: one resty client for every call; its headers go with each request to the coordinator
	dtmcli.GetRestyClient().SetHeader("Authorization", "Bearer "+clientToken)
	// dtmgrpc: an interceptor on the connections dtmgimp opens; only calls to the coordinator get the token
	dtmgrpc.AddUnaryInterceptor(func(ctx context.Context, method string, req, reply interface{},
		cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if cc.Target() == dtmGrpc {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+clientToken)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	httpClient.Transport = bearer{adminToken, http.DefaultTransport}
}

// bearer adds `Authorization: Bearer <token>` to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// TestAuthRequired: without a token the coordinator refuses (HTTP 401, gRPC Unauthenticated); with the
// client token a DTM call goes through, and a client token does not open an admin route (403).
func TestAuthRequired(t *testing.T) {
	if target == "dtm" {
		t.Skip("DTM has no authentication (the clients send the token, DTM ignores it)")
	}
	if testAPI == "" {
		t.Skip("the coordinator was not started by this suite: its tokens are unknown")
	}
	get := func(path, token string) int {
		req, _ := http.NewRequest(http.MethodGet, dtmHTTP+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := (&http.Client{Timeout: callTimeout}).Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/newGid", ""); code != http.StatusUnauthorized {
		t.Fatalf("newGid without a token: HTTP %d, want 401", code)
	}
	if code := get("/newGid", "wrong-token-0123456789abcdef"); code != http.StatusUnauthorized {
		t.Fatalf("newGid with a wrong token: HTTP %d, want 401", code)
	}
	if code := get("/all", clientToken); code != http.StatusForbidden {
		t.Fatalf("/all with the client token: HTTP %d, want 403", code)
	}
	if gid := dtmcli.MustGenGid(dtmHTTP); gid == "" {
		t.Fatal("dtmcli.MustGenGid with the client token: empty gid")
	}
	if grpcSkip != "" {
		return
	}
	// a raw connection without the interceptor: refused
	conn, err := grpc.Dial(dtmGrpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Invoke(context.Background(), "/dtmgimp.Dtm/NewGid", &emptypb.Empty{}, &dtmgpb.DtmGidReply{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC NewGid without a token: %v, want Unauthenticated", err)
	}
	if gid := dtmgrpc.MustGenGid(dtmGrpc); gid == "" {
		t.Fatal("dtmgrpc.MustGenGid with the client token: empty gid")
	}
}
