package chserver

import "syscall"

// sysProcAttr puts the server in its own process group (Stop signals the
// group) and has the kernel kill it when the thread that started it dies;
// start forks from a locked thread that lives as long as the child, so this
// fires when our process dies (even by SIGKILL).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
