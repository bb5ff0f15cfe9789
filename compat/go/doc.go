// Package compat runs DTM's official Go client (dtmcli, dtmgrpc, the sub-transaction barrier and the
// workflow client, as shipped in github.com/dtm-labs/dtm) against a dtx server, with branch services
// written in Go on a real MariaDB.
//
// Everything lives in the _test.go files: `go test ./...` starts dtx (the already-built
// ../../packages/server/dist/src/cli.js), the HTTP and gRPC branch services, and runs saga, msg, tcc and
// workflow over HTTP and over gRPC, asserting final transaction states and account balances. With
// DTX_COMPAT_TARGET=dtm it starts DTM's binary instead, to show the expectations are DTM's. See
// ../README.md.
package compat
