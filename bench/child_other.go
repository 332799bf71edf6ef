//go:build !linux

package bench

import "syscall"

// childAttr: no parent-death signal outside Linux; the bench stops its
// children itself.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
