package compat

// Reading the coordinator's state through DTM's HTTP query API (GET /api/dtmsvr/query), and driving
// dtx's cron through its test endpoint.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

var httpClient = &http.Client{Timeout: callTimeout}

type queryReply struct {
	Transaction *struct {
		Gid            string `json:"gid"`
		TransType      string `json:"trans_type"`
		Status         string `json:"status"`
		Protocol       string `json:"protocol"`
		RollbackReason string `json:"rollback_reason"`
	} `json:"transaction"`
	Branches []struct {
		BranchID string `json:"branch_id"`
		Op       string `json:"op"`
		Status   string `json:"status"`
		URL      string `json:"url"`
	} `json:"branches"`
}

func queryTrans(t *testing.T, gid string) queryReply {
	t.Helper()
	resp, err := httpClient.Get(dtmHTTP + "/query?gid=" + url.QueryEscape(gid))
	if err != nil {
		t.Fatalf("query %s: %v", gid, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("query %s: HTTP %d %s", gid, resp.StatusCode, body)
	}
	var q queryReply
	if err := json.Unmarshal(body, &q); err != nil {
		t.Fatalf("query %s: %v in %s", gid, err, body)
	}
	if q.Branches == nil {
		t.Errorf("query %s: branches is %s, want an array (spec §2.7)", gid, body)
	}
	return q
}

func (q queryReply) status() string {
	if q.Transaction == nil {
		return "<none>"
	}
	return q.Transaction.Status
}

// branches lists the stored branches as "<branch_id>/<op>=<status>", in stored order.
func (q queryReply) branches() []string {
	out := []string{}
	for _, b := range q.Branches {
		out = append(out, fmt.Sprintf("%s/%s=%s", b.BranchID, b.Op, b.Status))
	}
	return out
}

func isFinal(s string) bool { return s == "succeed" || s == "failed" }

// waitStatus polls the query API until the transaction is in a final state (or want), and checks it is want.
func waitStatus(t *testing.T, gid, want string) queryReply {
	t.Helper()
	deadline := time.Now().Add(settleWithin)
	for {
		q := queryTrans(t, gid)
		if s := q.status(); s == want || isFinal(s) || time.Now().After(deadline) {
			if s != want {
				t.Fatalf("transaction %s is %q, want %q (branches %v, calls %v)", gid, s, want, q.branches(), callsOf(gid))
			}
			return q
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertTrans checks the final state: status, protocol, stored branches and, when given, a
// rollback_reason substring.
func assertTrans(t *testing.T, tr transport, gid, status string, branches []string, reason string) {
	t.Helper()
	q := waitStatus(t, gid, status)
	if q.Transaction.Protocol != tr.protocol() {
		t.Errorf("protocol of %s is %q, want %q", gid, q.Transaction.Protocol, tr.protocol())
	}
	if got := q.branches(); strings.Join(got, " ") != strings.Join(branches, " ") {
		t.Errorf("branches of %s:\n  got  %v\n  want %v", gid, got, branches)
	}
	if reason != "" && !strings.Contains(q.Transaction.RollbackReason, reason) {
		t.Errorf("rollback_reason of %s is %q, want it to contain %q", gid, q.Transaction.RollbackReason, reason)
	}
}

// cronUntil runs dtx's cron one step at a time, with the clock forwarded by nowForward seconds, until
// gid reaches status want (other due transactions may be picked first).
func cronUntil(t *testing.T, gid string, nowForward int, want string) {
	t.Helper()
	cronUntilWindow(t, gid, nowForward, 180, want)
}

// cronOnce runs one step of dtx's cron, the clock forwarded by nowForward seconds, taking a transaction
// due within window seconds; it returns the gid it processed, "" when nothing was due.
func cronOnce(t *testing.T, nowForward, window int) string {
	t.Helper()
	body, _ := json.Marshal(map[string]int{"now_forward": nowForward, "cron_forward": window})
	resp, err := httpClient.Post(testAPI+"/cronOnce", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("cronOnce: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("cronOnce: HTTP %d %s", resp.StatusCode, b)
	}
	var r struct{ Gid string }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("cronOnce: %v in %s", err, b)
	}
	return r.Gid
}

// cronUntilWindow is cronUntil taking transactions due within window seconds (cron_forward): wide enough
// for one whose retries have backed off.
func cronUntilWindow(t *testing.T, gid string, nowForward, window int, want string) {
	t.Helper()
	if testAPI == "" { // DTX_COMPAT_REAL_CRON: the coordinator's own cron, in real time
		deadline := time.Now().Add(time.Duration(nowForward)*time.Second + 2*time.Minute)
		for q := queryTrans(t, gid); q.status() != want; q = queryTrans(t, gid) {
			if time.Now().After(deadline) {
				t.Fatalf("%s is %q, want %q (branches %v, calls %v)", gid, q.status(), want, q.branches(), callsOf(gid))
			}
			time.Sleep(200 * time.Millisecond)
		}
		return
	}
	deadline := time.Now().Add(settleWithin)
	for {
		picked := cronOnce(t, nowForward, window)
		q := queryTrans(t, gid)
		if q.status() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after cron steps %s is %q, want %q (branches %v, calls %v)", gid, q.status(), want, q.branches(), callsOf(gid))
		}
		if picked == "" {
			time.Sleep(50 * time.Millisecond) // nothing was due: give a concurrent pass time to finish
		}
	}
}
