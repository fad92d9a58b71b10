// A peer built on github.com/moby/spdystream, the SPDY library of kubectl, crictl, critest
// and kubelet, for spdystream-interop.test.ts (which builds it only when Go and a spdystream
// source tree are at hand: NODECRI_SPDYSTREAM_DIR). Modes:
//
//	golden         prints what spdystream's framer writes for a few frames (the fixtures of session.test.ts)
//	client ADDR    does what kubectl's executor does against our server, which echoes every stream
//	server ADDR    serves like kubelet, echoing every stream (spdystream.MirrorStreamHandler), for our client
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/moby/spdystream"
	"github.com/moby/spdystream/spdy"
)

func must(err error) {
	if err != nil {
		fmt.Println("FAIL", err)
		os.Exit(1)
	}
}

func golden() {
	var buf bytes.Buffer
	f, err := spdy.NewFramer(&buf, &buf)
	must(err)
	dump := func(name string, fr spdy.Frame) {
		must(f.WriteFrame(fr))
		fmt.Printf("%s %s\n", name, hex.EncodeToString(buf.Bytes()))
		buf.Reset()
	}
	// What Connection.CreateStream writes for kubectl's error stream, then the next stream.
	dump("syn_stream_1_error", &spdy.SynStreamFrame{StreamId: 1, Headers: http.Header{"streamtype": {"error"}}})
	dump("syn_stream_3_stdout", &spdy.SynStreamFrame{StreamId: 3, Headers: http.Header{"streamtype": {"stdout"}}})
	dump("syn_reply_2_empty", &spdy.SynReplyFrame{StreamId: 2, Headers: http.Header{}})
	dump("data_1_fin_empty", &spdy.DataFrame{StreamId: 1, Flags: spdy.DataFlagFin, Data: []byte{}})
	dump("rst_3_cancel", &spdy.RstStreamFrame{StreamId: 3, Status: spdy.Cancel})
	dump("ping_1", &spdy.PingFrame{Id: 1})
	dump("goaway_0_ok", &spdy.GoAwayFrame{LastGoodStreamId: 0, Status: spdy.GoAwayOK})
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:8]) }

// client: what kubectl's SPDY executor does, against our server echoing every stream.
func client(addr string) {
	conn, err := net.Dial("tcp", addr)
	must(err)
	c, err := spdystream.NewConnection(conn, false)
	must(err)
	go c.Serve(spdystream.NoOpStreamHandler)
	_, err = c.Ping()
	must(err)
	fmt.Println("ping ok")
	var wg sync.WaitGroup
	sizes := []int{0, 1, 1000, 100000, 10 << 20}
	for i := 0; i < 20; i++ {
		for _, size := range sizes {
			if i > 0 && size == 10<<20 {
				continue
			}
			wg.Add(1)
			go func(i, size int) {
				defer wg.Done()
				s, err := c.CreateStream(http.Header{"streamtype": {"stdin"}, "requestid": {fmt.Sprint(i)}}, nil, false)
				must(err)
				must(s.Wait())
				data := make([]byte, size)
				rand.Read(data)
				go func() {
					for off := 0; off < len(data); off += 32 * 1024 {
						end := off + 32*1024
						if end > len(data) {
							end = len(data)
						}
						_, err := s.Write(data[off:end])
						must(err)
					}
					must(s.Close())
				}()
				back, err := io.ReadAll(s)
				must(err)
				if !bytes.Equal(back, data) {
					fmt.Println("FAIL mismatch", i, size, len(back))
					os.Exit(1)
				}
			}(i, size)
		}
	}
	wg.Wait()
	fmt.Println("echo ok")
	// A stream reset by us while the server still has it open.
	s, err := c.CreateStream(http.Header{"streamtype": {"reset-me"}}, nil, false)
	must(err)
	must(s.Wait())
	must(s.Reset())
	// A stream the server refuses with RST.
	s2, err := c.CreateStream(http.Header{"streamtype": {"refuse"}}, nil, false)
	must(err)
	err = s2.Wait()
	fmt.Println("refused:", err)
	must(c.Close())
	fmt.Println("close ok")
}

// server: kubelet's side, echoing every stream (spdystream.MirrorStreamHandler), for our client.
func server(addr string) {
	l, err := net.Listen("tcp", addr)
	must(err)
	fmt.Println("listening", l.Addr())
	for {
		conn, err := l.Accept()
		must(err)
		go func() {
			c, err := spdystream.NewConnection(conn, true)
			must(err)
			c.Serve(spdystream.MirrorStreamHandler)
			fmt.Println("served")
		}()
	}
}

func main() {
	switch os.Args[1] {
	case "golden":
		golden()
	case "client":
		client(os.Args[2])
	case "server":
		server(os.Args[2])
	}
}
