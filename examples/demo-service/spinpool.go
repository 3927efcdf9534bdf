package main

import (
	"bufio"
	"log"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// spinPool is a set of `spin` child processes, started once with the service and idle
// (blocked on their stdin) until /cpu?mode=host switches some on. Why a pool: starting
// processes inside the request would put fork/exec and a wait for their readiness into
// the span being measured; switching them on is one pipe write each.
type spinPool struct {
	mu    sync.Mutex
	procs []*spinProc
}

type spinProc struct {
	cmd   *exec.Cmd
	stdin *os.File
	users int
}

// newSpinPool starts n spinner processes. A spinner exits when its stdin closes, so none
// outlives the service.
func newSpinPool(n int) *spinPool {
	p := &spinPool{}
	exe, err := os.Executable()
	if err != nil {
		log.Printf("spin pool: %v", err)
		return p
	}
	for i := 0; i < n; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			log.Printf("spin pool: %v", err)
			break
		}
		cmd := exec.Command(exe, "spin")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = r, nil, os.Stderr
		// the pool must not outlive a service that is killed (tests kill -9 it)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			log.Printf("spin pool: %v", err)
			r.Close()
			w.Close()
			break
		}
		r.Close()
		p.procs = append(p.procs, &spinProc{cmd: cmd, stdin: w})
	}
	return p
}

// run switches on k spinners (at most the pool's size) and returns the function that
// switches them off again. Concurrent requests share spinners by reference count.
func (p *spinPool) run(k int) func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	used := p.procs[:min(k, len(p.procs))]
	for _, s := range used {
		if s.users == 0 {
			_, _ = s.stdin.Write([]byte{'1'})
		}
		s.users++
	}
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, s := range used {
			s.users--
			if s.users == 0 {
				_, _ = s.stdin.Write([]byte{'0'})
			}
		}
	}
}

func (p *spinPool) stop() {
	for _, s := range p.procs {
		s.stdin.Close()
		_ = s.cmd.Wait()
	}
}

// runSpin is the `spin` subcommand: reads '1' (spin) and '0' (idle) from stdin and exits at
// EOF. While on, it burns one CPU; while off, it sleeps on a channel and costs nothing.
func runSpin() {
	runtime.GOMAXPROCS(1)
	var on atomic.Bool
	wake := make(chan struct{}, 1)
	go func() {
		r := bufio.NewReader(os.Stdin)
		for {
			b, err := r.ReadByte()
			if err != nil {
				os.Exit(0)
			}
			on.Store(b == '1')
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	x := uint64(1)
	for {
		if !on.Load() {
			<-wake
			continue
		}
		for i := 0; i < 100000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		sink.Add(x)
	}
}
