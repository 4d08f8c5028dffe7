//go:build linux

package lambdarie

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const supported = true

// sysProcAttr puts the RIE in its own process group, and kills it if the test
// process dies without cleaning up. (The RIE starts each runtime process in a
// process group of its own, so Stop also kills those explicitly.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func signalTerm(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }

// killGroup SIGKILLs the process group led by pid.
func killGroup(pid int) {
	if pid > 1 && pid != syscall.Getpgrp() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// proc identifies a process by pid and start time, so that a recycled pid is
// not mistaken for it.
type proc struct {
	pid   int
	start string
}

// kill SIGKILLs the process (and the process group it leads, if it leads
// one) if it is still the same process.
func (p proc) kill() {
	st, ok := readStat(p.pid)
	if !ok || st.start != p.start {
		return
	}
	if st.pgrp == p.pid && p.pid != syscall.Getpgrp() {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
}

type stat struct {
	state byte
	ppid  int
	pgrp  int
	start string
}

// readStat parses /proc/<pid>/stat.
func readStat(pid int) (stat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return stat{}, false
	}
	f := strings.Fields(s[i+2:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return stat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgrp, _ := strconv.Atoi(f[2])
	return stat{state: f[0][0], ppid: ppid, pgrp: pgrp, start: f[19]}, true
}

// descendants lists the live descendants of pid.
func descendants(pid int) []proc {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	children := map[int][]proc{}
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st, ok := readStat(p); ok && st.state != 'Z' {
			children[st.ppid] = append(children[st.ppid], proc{pid: p, start: st.start})
		}
	}
	var out []proc
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// processAlive reports whether pid is a live (not zombie) process.
func processAlive(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.state != 'Z' && st.state != 'X'
}
