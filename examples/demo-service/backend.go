package main

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// tcpBackend is a tiny line protocol server on loopback standing in for a database:
// the client writes "<ms>\n", the backend waits ms and answers "ok <ms>\n". The request's
// goroutine therefore parks in the netpoller for ms on a real TCP socket (cause: network).
type tcpBackend struct {
	ln net.Listener
}

func startTCPBackend(addr string) (*tcpBackend, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	b := &tcpBackend{ln: ln}
	go b.serve()
	return b, nil
}

func (b *tcpBackend) addr() string { return b.ln.Addr().String() }

func (b *tcpBackend) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		go b.handle(c)
	}
}

func (b *tcpBackend) handle(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		ms, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil {
			fmt.Fprintf(c, "error %v\n", err)
			return
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintf(c, "ok %d\n", ms)
	}
}

// callBackend dials the backend, asks for a reply after ms and waits for it.
func callBackend(addr string, ms int) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Duration(ms)*time.Millisecond + 30*time.Second))
	if _, err := fmt.Fprintf(c, "%d\n", ms); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}
