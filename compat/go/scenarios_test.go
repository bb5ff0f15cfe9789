package compat

// The scenarios. Each asserts, for one transaction: the final status and stored branches (query API),
// the exact branch calls the Go services received, the barrier rows, and the account balances.

import (
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/dtm-labs/dtm/client/dtmcli"
)

const refused = "refused by the compat test" // text of the FAILURE a branch answers when asked to

// Saga, both steps succeed: 30 moves from out to in.
func TestSagaCommit(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		gid := tr.newGid(t)
		a := newAccounts(t, gid)
		if err := tr.submitSaga(t, gid, a, sagaOpts{}); err != nil {
			t.Fatalf("submit: %v", err)
		}
		assertTrans(t, tr, gid, "succeed", []string{"01/compensate=prepared", "01/action=succeed", "02/compensate=prepared", "02/action=succeed"}, "")
		assertCalls(t, gid, "TransOut/action", "TransIn/action")
		assertBarrier(t, gid, "01/action/01 reason=action", "02/action/01 reason=action")
		a.assertBalances(t, 70, 130)
		// A finished transaction cannot be submitted again (spec §12.4): FAILURE, and nothing is called.
		if err := tr.submitSaga(t, gid, a, sagaOpts{}); !tr.isFailure(err) {
			t.Errorf("submitting %s again after succeed: err = %v, want FAILURE", gid, err)
		}
		assertCalls(t, gid, "TransOut/action", "TransIn/action")
	})
}

// Saga, TransIn answers FAILURE after its update (which its local transaction rolls back): the
// coordinator compensates both steps, newest first. TransIn's compensation is a null compensation, which
// the barrier skips. With wait_result the submit reports the failure.
func TestSagaRollback(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		gid := tr.newGid(t)
		a := newAccounts(t, gid)
		err := tr.submitSaga(t, gid, a, sagaOpts{inResult: dtmcli.ResultFailure, waitResult: true})
		if !tr.isFailure(err) || !strings.Contains(err.Error(), refused) {
			t.Errorf("submit with wait_result: err = %v, want FAILURE with the branch's reason %q", err, refused)
		}
		assertTrans(t, tr, gid, "failed", []string{"01/compensate=succeed", "01/action=succeed", "02/compensate=succeed", "02/action=failed"}, refused)
		assertCalls(t, gid, "TransOut/action", "TransIn/action", "TransInRevert/compensate", "TransOutRevert/compensate")
		assertBarrier(t, gid,
			"01/action/01 reason=action",
			"02/action/01 reason=compensate", "02/compensate/01 reason=compensate", // null compensation
			"01/compensate/01 reason=compensate")
		a.assertBalances(t, 100, 100)
	})
}

// Saga whose TransIn answers ONGOING (HTTP 425 / gRPC FailedPrecondition) once: the transaction stays
// submitted, and the next cron pass delivers it.
func TestSagaOngoing(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		needTestAPI(t)
		gid := tr.newGid(t)
		a := newAccounts(t, gid)
		if err := tr.submitSaga(t, gid, a, sagaOpts{inResult: resultOngoingOnce}); err != nil {
			t.Fatalf("submit: %v", err)
		}
		waitCalls(t, gid, 2)
		if q := queryTrans(t, gid); q.status() != "submitted" {
			t.Fatalf("after ONGOING %s is %q, want submitted (branches %v)", gid, q.status(), q.branches())
		}
		cronUntil(t, gid, 0, "succeed")
		assertTrans(t, tr, gid, "succeed", []string{"01/compensate=prepared", "01/action=succeed", "02/compensate=prepared", "02/action=succeed"}, "")
		assertCalls(t, gid, "TransOut/action", "TransIn/action", "TransIn/action")
		assertBarrier(t, gid, "01/action/01 reason=action", "02/action/01 reason=action")
		a.assertBalances(t, 70, 130)
	})
}

// Concurrent saga (custom_data {"concurrent":true}): both actions may run at once.
func TestSagaConcurrent(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		gid := tr.newGid(t)
		a := newAccounts(t, gid)
		if err := tr.submitSaga(t, gid, a, sagaOpts{concurrent: true, waitResult: true}); err != nil {
			t.Fatalf("submit: %v", err)
		}
		assertTrans(t, tr, gid, "succeed", []string{"01/compensate=prepared", "01/action=succeed", "02/compensate=prepared", "02/action=succeed"}, "")
		assertCallsSet(t, gid, "TransOut/action", "TransIn/action")
		a.assertBalances(t, 70, 130)
	})
}

// msg DoAndSubmitDB: the local debit and the barrier row commit together, then the message is submitted
// and TransIn delivered.
func TestMsgDoAndSubmit(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		gid := tr.newGid(t)
		a := newAccounts(t, gid)
		if err := tr.msgDoAndSubmit(t, gid, a, localDebit(a.out, 30)); err != nil {
			t.Fatalf("DoAndSubmitDB: %v", err)
		}
		assertTrans(t, tr, gid, "succeed", []string{"01/action=succeed"}, "")
		assertCalls(t, gid, "TransIn/action")
		assertBarrier(t, gid, "00/msg/01 reason=msg", "01/action/01 reason=action")
		a.assertBalances(t, 70, 130)
	})
}

// msg DoAndSubmitDB whose local business fails with a plain error: the SDK asks the QueryPrepared
// back-check itself, which answers FAILURE (the barrier row now says rollback), so the SDK aborts.
func TestMsgDoAndSubmitBusiFailed(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		gid := tr.newGid(t)
		a := newAccounts(t, gid)
		boom := errors.New("local business crashed")
		err := tr.msgDoAndSubmit(t, gid, a, func(tx *sql.Tx) error {
			if err := localDebit(a.out, 30)(tx); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Errorf("DoAndSubmitDB: err = %v, want the local error", err)
		}
		assertTrans(t, tr, gid, "failed", []string{"01/action=prepared"}, "")
		assertCalls(t, gid, "QueryPrepared/msg")
		assertBarrier(t, gid, "00/msg/01 reason=rollback")
		a.assertBalances(t, 100, 100)
	})
}

// msg prepared, local transaction committed, then the app "crashes" before submit: once the prepared
// message times out, the coordinator's back-check (QueryPrepared on the barrier) finds the committed
// row, answers SUCCESS, and the message is delivered.
func TestMsgBackCheckCommitted(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		needTestAPI(t)
		gid := tr.newGid(t)
		a := newAccounts(t, gid)
		if err := tr.msgPrepare(t, gid, a); err != nil {
			t.Fatalf("prepare: %v", err)
		}
		bb, err := dtmcli.BarrierFrom("msg", gid, "00", "msg") // what DoAndSubmit uses
		if err != nil {
			t.Fatal(err)
		}
		if err := bb.CallWithDB(db, localDebit(a.out, 30)); err != nil {
			t.Fatalf("local transaction: %v", err)
		}
		if s := queryTrans(t, gid).status(); s != "prepared" {
			t.Fatalf("before the back-check %s is %q, want prepared", gid, s)
		}
		cronUntil(t, gid, 60, "succeed") // 60 s > TimeoutToFail (35 s)
		assertTrans(t, tr, gid, "succeed", []string{"01/action=succeed"}, "")
		assertCalls(t, gid, "QueryPrepared/msg", "TransIn/action")
		assertBarrier(t, gid, "00/msg/01 reason=msg", "01/action/01 reason=action")
		a.assertBalances(t, 70, 130)
	})
}

// msg prepared and the local transaction never committed: the coordinator's back-check inserts the
// rollback row first and answers FAILURE, so the message fails; the local transaction, arriving late,
// is then refused by the barrier (DUPLICATED).
func TestMsgBackCheckRolledBack(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		needTestAPI(t)
		gid := tr.newGid(t)
		a := newAccounts(t, gid)
		if err := tr.msgPrepare(t, gid, a); err != nil {
			t.Fatalf("prepare: %v", err)
		}
		cronUntil(t, gid, 60, "failed")
		assertTrans(t, tr, gid, "failed", []string{"01/action=prepared"}, "")
		assertCalls(t, gid, "QueryPrepared/msg")
		bb, err := dtmcli.BarrierFrom("msg", gid, "00", "msg")
		if err != nil {
			t.Fatal(err)
		}
		if err := bb.CallWithDB(db, localDebit(a.out, 30)); !errors.Is(err, dtmcli.ErrDuplicated) {
			t.Errorf("late local transaction: err = %v, want DUPLICATED", err)
		}
		assertBarrier(t, gid, "00/msg/01 reason=rollback")
		a.assertBalances(t, 100, 100)
	})
}

// TCC, both tries succeed: the coordinator confirms, last registered branch first.
func TestTccCommit(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		gid := tr.newGid(t)
		a := newAccounts(t, gid)
		if err := tr.tcc(t, gid, a, ""); err != nil {
			t.Fatalf("tcc: %v", err)
		}
		assertTrans(t, tr, gid, "succeed", []string{"01/cancel=prepared", "01/confirm=succeed", "02/cancel=prepared", "02/confirm=succeed"}, "")
		assertCalls(t, gid, "TransOutTry/try", "TransInTry/try", "TransInConfirm/confirm", "TransOutConfirm/confirm")
		assertBarrier(t, gid, "01/try/01 reason=try", "02/try/01 reason=try", "02/confirm/01 reason=confirm", "01/confirm/01 reason=confirm")
		a.assertBalances(t, 70, 130)
	})
}

// TCC, TransIn's try answers FAILURE: the SDK aborts with the error as rollback_reason and the
// coordinator cancels both branches, last first; TransIn's cancel is a null compensation.
func TestTccRollback(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		gid := tr.newGid(t)
		a := newAccounts(t, gid)
		if err := tr.tcc(t, gid, a, dtmcli.ResultFailure); err == nil || !strings.Contains(err.Error(), refused) {
			t.Errorf("tcc: err = %v, want the try's failure %q", err, refused)
		}
		assertTrans(t, tr, gid, "failed", []string{"01/cancel=succeed", "01/confirm=prepared", "02/cancel=succeed", "02/confirm=prepared"}, refused)
		assertCalls(t, gid, "TransOutTry/try", "TransInTry/try", "TransInCancel/cancel", "TransOutCancel/cancel")
		assertBarrier(t, gid,
			"01/try/01 reason=try",
			"02/try/01 reason=cancel", "02/cancel/01 reason=cancel", // null compensation
			"01/cancel/01 reason=cancel")
		a.assertBalances(t, 100, 100)
	})
}
