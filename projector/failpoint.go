package projector

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

// FailpointEnv names the environment variable that arms the projector's
// failpoint for crash tests. It is inert unless set:
//
//	TALLY_FAILPOINT=crash-after-insert:0.3
//
// kills the process with SIGKILL right after a successful INSERT and before
// the batch's messages are acked, with probability 0.3 per batch. JetStream
// then redelivers the batch, and the projector must recognize every event as
// already inserted. Never set it in production.
const FailpointEnv = "TALLY_FAILPOINT"

const failpointCrashAfterInsert = "crash-after-insert"

// failpoint is a parsed TALLY_FAILPOINT.
type failpoint struct {
	crashAfterInsert float64 // probability per batch, 0 = off
}

func parseFailpoint(s string) (failpoint, error) {
	if s == "" {
		return failpoint{}, nil
	}
	name, arg, ok := strings.Cut(s, ":")
	if !ok || name != failpointCrashAfterInsert {
		return failpoint{}, fmt.Errorf("%s=%q: want %s:P with P in 0..1", FailpointEnv, s, failpointCrashAfterInsert)
	}
	p, err := strconv.ParseFloat(arg, 64)
	if err != nil || p < 0 || p > 1 {
		return failpoint{}, fmt.Errorf("%s=%q: probability must be a number in 0..1", FailpointEnv, s)
	}
	return failpoint{crashAfterInsert: p}, nil
}

// afterInsert reports whether the crash-after-insert failpoint fires for
// this batch.
func (f failpoint) afterInsert() bool {
	return f.crashAfterInsert > 0 && rand.Float64() < f.crashAfterInsert
}

// crash kills the current process with SIGKILL: no deferred code runs and
// no ack is sent.
func crash() {
	self, err := os.FindProcess(os.Getpid())
	if err == nil {
		_ = self.Kill()
	}
	select {} // the signal is asynchronous; never carry on to the acks
}
