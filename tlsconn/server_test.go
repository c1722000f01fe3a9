package tlsconn_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/vsp-dev/vsp/tlsconn"
)

// ezTCPClientConfig is a Go TLS client restricted like an ezTCP in COD mode.
func ezTCPClientConfig() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS10,
		MaxVersion:         tls.VersionTLS10,
		CipherSuites:       []uint16{tls.TLS_RSA_WITH_AES_256_CBC_SHA},
	}
}

func TestServer(t *testing.T) {
	hostCert := newCert(t, certOpts{rsaBits: 1024, sha1: true})
	tests := []struct {
		name    string
		cfg     tlsconn.ServerConfig
		client  *tls.Config // nil = plain TCP
		want    error
		version string
	}{
		{"legacy TLS 1.0", tlsconn.ServerConfig{Profile: tlsconn.ProfileLegacy, Certificate: &hostCert.tls, AllowedPeers: []string{"127.0.0.0/8"}},
			ezTCPClientConfig(), nil, "TLS 1.0"},
		{"plain", tlsconn.ServerConfig{Profile: tlsconn.ProfileOff, AllowedPeers: []string{"127.0.0.1"}}, nil, nil, ""},
		{"peer not allowed", tlsconn.ServerConfig{Profile: tlsconn.ProfileOff, AllowedPeers: []string{"10.1.0.1"}}, nil, tlsconn.ErrPeerNotAllowed, ""},
		{"modern refuses TLS 1.0 device", tlsconn.ServerConfig{Certificate: &hostCert.tls}, ezTCPClientConfig(), tlsconn.ErrHandshake, ""},
		{"no certificate", tlsconn.ServerConfig{Profile: tlsconn.ProfileLegacy}, nil, tlsconn.ErrInvalidConfig, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			type result struct {
				conn net.Conn
				info tlsconn.Info
				err  error
			}
			done := make(chan result, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					done <- result{err: err}
					return
				}
				conn, info, err := tlsconn.Server(ctxT(t), c, tt.cfg, nil)
				done <- result{conn, info, err}
			}()
			raw, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var dev net.Conn = raw
			if tt.client != nil {
				tc := tls.Client(raw, tt.client)
				dev = tc
				if tt.want == nil {
					if err := tc.HandshakeContext(ctxT(t)); err != nil {
						t.Fatalf("device handshake: %v", err)
					}
				} else {
					go tc.HandshakeContext(ctxT(t))
				}
			}
			r := <-done
			if tt.want != nil {
				if !errors.Is(r.err, tt.want) {
					t.Fatalf("Server err = %v, want %v", r.err, tt.want)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("Server: %v", r.err)
			}
			defer r.conn.Close()
			if r.info.Version != tt.version || r.info.TLS != (tt.client != nil) {
				t.Errorf("Info %+v", r.info)
			}
			go io.Copy(r.conn, r.conn) // echo; TLS 1.0 CBC splits records 1/n-1
			echo(t, dev, "from device")
		})
	}
}
