package config

import (
	"reflect"
	"testing"
)

// checkErrorTree fails unless err is an *Error or a join of *Error values,
// each with File set and a sane position.
func checkErrorTree(t *testing.T, err error, file string) {
	t.Helper()
	var list []error
	switch e := err.(type) {
	case *Error:
		list = []error{e}
	case interface{ Unwrap() []error }:
		list = e.Unwrap()
	default:
		t.Fatalf("error %T is neither an *Error nor a join: %v", err, err)
	}
	if len(list) == 0 {
		t.Fatalf("empty join: %v", err)
	}
	for _, e := range list {
		ce, ok := e.(*Error)
		if !ok {
			t.Fatalf("joined error %T is not an *Error: %v", e, e)
		}
		if ce.File != file || ce.Line < 0 || ce.Col < 0 || ce.Err == nil {
			t.Fatalf("bad *Error %#v", ce)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range validCases {
		f.Add(tc.doc)
	}
	for _, tc := range errorCases {
		f.Add(tc.doc)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := Parse("plc1", "p.toml", []byte(doc))
		if err != nil {
			if p != nil {
				t.Fatal("port and error both returned")
			}
			checkErrorTree(t, err, "p.toml")
			return
		}
		// A valid port round-trips through Encode.
		data, err := p.Encode()
		if err != nil {
			t.Fatalf("Encode of a parsed port: %v", err)
		}
		q, err := Parse("plc1", "p.toml", data)
		if err != nil {
			t.Fatalf("Parse(Encode()): %v\n%s", err, data)
		}
		p.pos, q.pos = nil, nil
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip:\n got %+v\nwant %+v\n%s", q, p, data)
		}
	})
}

func FuzzParseDaemon(f *testing.F) {
	f.Add("")
	f.Add("config_dir = \"/srv/vsp/ports\"\nsocket = \"/run/v.sock\"\nlog_format = \"json\"\nmetrics = \":9750\"\n")
	f.Add("socket = \"vsp.sock\"\nlog_fromat = \"json\"\n")
	f.Add("# x\n\nlog_level = \"warn\"\nlink_dir = \"/dev/vsp\"\n")
	f.Fuzz(func(t *testing.T, doc string) {
		d, err := ParseDaemon("d.toml", []byte(doc), testPaths)
		if err != nil {
			if d != nil {
				t.Fatal("settings and error both returned")
			}
			checkErrorTree(t, err, "d.toml")
			return
		}
		for k, line := range d.Lines {
			if line < 1 || d.Value(k) == "" && k != "metrics" {
				t.Fatalf("key %s: line %d, value %q", k, line, d.Value(k))
			}
		}
		for _, k := range DaemonKeys() {
			if _, set := d.Lines[k]; !set && k != "metrics" && d.Value(k) == "" {
				t.Fatalf("unset key %s has no default", k)
			}
		}
	})
}
