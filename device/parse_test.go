package device

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

var atTests = []struct {
	line string
	want []atCmd
	err  bool
}{
	{"AT", nil, false},
	{"at", nil, false},
	{"ATE0", []atCmd{{Name: "E", Arg: "0"}}, false},
	{"ATE1V0", []atCmd{{Name: "E", Arg: "1"}, {Name: "V", Arg: "0"}}, false},
	{"ATI3", []atCmd{{Name: "I", Arg: "3"}}, false},
	{"ATA", []atCmd{{Name: "A"}}, false},
	{"ATH", []atCmd{{Name: "H"}}, false},
	{"ATO", []atCmd{{Name: "O"}}, false},
	{"ATZ", []atCmd{{Name: "Z"}}, false},
	{"ATD10.1.0.2:1470", []atCmd{{Name: "D", Arg: "10.1.0.2:1470"}}, false},
	{"ATDT10.1.0.2", []atCmd{{Name: "D", Arg: "10.1.0.2"}}, false},
	{"ATE0D", []atCmd{{Name: "E", Arg: "0"}, {Name: "D"}}, false},
	{"AT+PLP?", []atCmd{{Name: "+PLP", Query: true}}, false},
	{"AT+PLP=?", []atCmd{{Name: "+PLP", Query: true}}, false},
	{"AT+PLP=1470", []atCmd{{Name: "+PLP", Arg: "1470", Set: true}}, false},
	{`AT+PRIP="10.1.0.2";+PRP=1470`, []atCmd{{Name: "+PRIP", Arg: "10.1.0.2", Set: true}, {Name: "+PRP", Arg: "1470", Set: true}}, false},
	{"AT E0 V1", []atCmd{{Name: "E", Arg: "0"}, {Name: "V", Arg: "1"}}, false},
	{"", nil, true},
	{"A", nil, true},
	{"XYZ", nil, true},
	{"ATBOGUS", nil, true},
	{"AT+", nil, true},
	{"AT+PLP!", nil, true},
	{"AT\x01", nil, true},
	{"AT" + strings.Repeat("E", maxATLine), nil, true},
}

func TestParseAT(t *testing.T) {
	for _, tt := range atTests {
		got, err := parseAT(tt.line)
		if (err != nil) != tt.err {
			t.Errorf("%q: err %v, want error %v", tt.line, err, tt.err)
			continue
		}
		if err != nil && !errors.Is(err, ErrATSyntax) {
			t.Errorf("%q: error %v does not wrap ErrATSyntax", tt.line, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: got %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func FuzzParseAT(f *testing.F) {
	for _, tt := range atTests {
		f.Add(tt.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmds, err := parseAT(line)
		if err != nil {
			if !errors.Is(err, ErrATSyntax) {
				t.Fatalf("error %v does not wrap ErrATSyntax", err)
			}
			return
		}
		for _, c := range cmds {
			if c.Name == "" || (c.Query && c.Set) {
				t.Fatalf("bad command %+v from %q", c, line)
			}
		}
	})
}

var consoleLineTests = []struct {
	in    string
	lines []string // lines, "!long" or "!bin" for the two line errors
}{
	{"help\r\n", []string{"help"}},
	{"st net\r\x00st tcp\r\n", []string{"st net", "st tcp"}},
	{"a\nb\rc\r\n", []string{"a", "b", "c"}},
	{"rsa keygen 512\r\n", []string{"rsa keygen 512"}},
	{"hel\x7flp\r\n", []string{"help"}},
	{"\xff\xfd\x01\xff\xfb\x18help\r\n", []string{"help"}},
	{"he\xff\xfa\x18\x00xterm\xff\xf0lp\r\n", []string{"help"}},
	{"\xff\xff\r\n", []string{"!bin"}},
	{"\x80\x81\r\nok\r\n", []string{"!bin", "ok"}},
	{strings.Repeat("x", maxLine+1) + "\r\n", []string{"!long"}},
	{"\tst\r\n", []string{" st"}},
}

// readAllLines runs a telnetReader over in and returns what it produced.
func readAllLines(in string) ([]string, []byte) {
	var replies bytes.Buffer
	r := newTelnetReader(strings.NewReader(in), &replies)
	var out []string
	for {
		l, err := r.readLine()
		switch {
		case errors.Is(err, errLineTooLong):
			out = append(out, "!long")
		case errors.Is(err, errBinary):
			out = append(out, "!bin")
		case err != nil:
			return out, replies.Bytes()
		default:
			out = append(out, l)
		}
	}
}

func TestTelnetReader(t *testing.T) {
	for _, tt := range consoleLineTests {
		got, _ := readAllLines(tt.in)
		if !reflect.DeepEqual(got, tt.lines) {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.lines)
		}
	}
	// Outside the password prompt (character mode) DO ECHO is refused like
	// an unknown DO: WONT.
	_, replies := readAllLines("\xff\xfd\x01\xff\xfd\x18x\r\n")
	if !bytes.Equal(replies, []byte{tnIAC, tnWONT, optEcho, tnIAC, tnWONT, 24}) {
		t.Fatalf("negotiation replies % x", replies)
	}
}

// FuzzConsoleLine feeds arbitrary bytes to the console's line reader and
// command lookup: it must never panic, never return a line over maxLine or
// with control characters, and always end at the end of the input.
func FuzzConsoleLine(f *testing.F) {
	for _, tt := range consoleLineTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := newTelnetReader(bytes.NewReader(in), io.Discard)
		for i := 0; ; i++ {
			if i > len(in)+1 {
				t.Fatal("more lines than input bytes")
			}
			l, err := r.readLine()
			if err != nil {
				if errors.Is(err, errLineTooLong) || errors.Is(err, errBinary) {
					continue
				}
				return
			}
			if len(l) > maxLine || !utf8.ValidString(l) {
				t.Fatalf("bad line %q", l)
			}
			for _, c := range []byte(l) {
				if c < 0x20 || c > 0x7e {
					t.Fatalf("control character in line %q", l)
				}
			}
			if c, args := lookupCommand(parseCommand(l)); c != nil && len(args) > len(l) {
				t.Fatalf("lookup %q", l)
			}
		}
	})
}
