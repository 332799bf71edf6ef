package bench

import "syscall"

// childAttr has the kernel kill a child when the bench dies, so a projector
// never outlives an interrupted run.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
