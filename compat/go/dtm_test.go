package compat

// DTX_COMPAT_TARGET=dtm: the same suite against DTM itself, to show that its expectations are DTM's.
// The suite starts DTM's binary (DTX_COMPAT_DTM_BIN, by default the one bench/ downloads and builds) on
// free ports with a BoltDB store in a temp dir, like startDtx does for dtx.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// dtmConfig is DTM's configuration for the suite: branch writes synchronous (UpdateBranchSync: 1, so a
// registered workflow step is stored before registerBranch answers), the shortest timeouts DTM accepts
// (RetryInterval and TimeoutToFail at least 10 s) and a cron pass every second.
func dtmConfig(httpPort, grpcPort, jsonRPCPort int) string {
	return strings.Join([]string{
		fmt.Sprintf("HttpPort: %d", httpPort),
		fmt.Sprintf("GrpcPort: %d", grpcPort),
		fmt.Sprintf("JsonRpcPort: %d", jsonRPCPort),
		"UpdateBranchSync: 1",
		"TimeoutToFail: 10",
		"RetryInterval: 10",
		"TransCronInterval: 1",
		"LogLevel: '" + envOr("DTX_COMPAT_LOG_LEVEL", "error") + "'",
		"Store:",
		"  Driver: 'boltdb'",
		"",
	}, "\n")
}

// startDtm runs DTM (DTX_COMPAT_DTM_BIN, default ~/.cache/dtx-bench/dtm/dtm) on free ports, its BoltDB
// file in a temp dir, waits for /api/ping, and returns the function that stops it.
func startDtm() (stop func(), err error) {
	bin := os.Getenv("DTX_COMPAT_DTM_BIN")
	if bin == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, err
		}
		bin = filepath.Join(home, ".cache", "dtx-bench", "dtm", "dtm")
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("DTM binary %s is missing (%v): build it (`node bench/run.mjs --peers` downloads and builds DTM v1.19.0 there) or set DTX_COMPAT_DTM_BIN", bin, err)
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "dtx-compat-dtm-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "dtm.yml")
	if err := os.WriteFile(conf, []byte(dtmConfig(ports[0], ports[1], ports[2])), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(bin, "-c", conf)
	cmd.Dir = dir // DTM's BoltDB file is ./dtm.bolt
	exited, stop, err := spawn(cmd, dir)
	if err != nil {
		return nil, fmt.Errorf("starting DTM %s: %w", bin, err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	if err := waitPing(base, "DTM", exited, stop); err != nil {
		return nil, err
	}
	dtmHTTP = base + "/api/dtmsvr"
	dtmGrpc = fmt.Sprintf("127.0.0.1:%d", ports[1])
	// DTM has no authentication: the clients send the token anyway (it ignores the header), so the
	// scenarios run unchanged.
	useTokens()
	fmt.Printf("compat: DTM (%s) serving HTTP %s, gRPC %s\n", bin, base, dtmGrpc)
	return stop, nil
}
