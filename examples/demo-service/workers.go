package main

import "runtime"

// detached runs jobs on goroutines whose parent is a long-lived dispatcher, never the
// request's goroutine. Why: otel-goblock attributes goroutines spawned inside a span to that
// span (DESIGN §3, lineage) and explains a wait on a child by what the child did. The
// /mutex, /chan, /select and /syscall scenarios must read as lock/channel/syscall, so
// their helpers must not be the handler's children. (/fanout uses real children on purpose.)
type detached struct{ jobs chan func() }

func newDetached() *detached {
	d := &detached{jobs: make(chan func(), 4096)}
	go func() {
		for job := range d.jobs {
			go job()
		}
	}()
	return d
}

// run hands job to the dispatcher; the buffered queue keeps the handler from blocking.
func (d *detached) run(job func()) { d.jobs <- job }

// spinUntil burns CPU on the current goroutine until stop is closed; used by /cpu spinners.
func spinUntil(stop <-chan struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x := uint64(1)
	for {
		select {
		case <-stop:
			sink.Add(x)
			return
		default:
		}
		for i := 0; i < 10000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
}
