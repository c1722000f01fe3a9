package device

import (
	"errors"
	"fmt"
	"strings"
)

// maxATLine is the longest AT command line accepted (simulator-defined).
const maxATLine = 128

// ErrATSyntax reports an AT command line that cannot be parsed.
var ErrATSyntax = errors.New("device: AT command syntax")

// atCmd is one command of an AT command line: a basic command letter ("A",
// "D", "E", "H", "I", "O", "V", "Z") with its digits (or the dial string
// for D), or an extended command ("+PLP") that is queried ("?"), set
// ("=value") or executed.
type atCmd struct {
	Name  string // upper case: "E", "D", "+PLP"
	Arg   string // digits, dial string, or the value after '='
	Query bool   // "AT+PLP?" or "AT+PLP=?"
	Set   bool   // "AT+PLP=1470"
}

// parseAT splits an AT command line (without its CR) into commands.
// Spaces are ignored outside the dial string and values; "AT" alone is an
// empty list.
func parseAT(line string) ([]atCmd, error) {
	if len(line) > maxATLine {
		return nil, fmt.Errorf("%w: line longer than %d characters", ErrATSyntax, maxATLine)
	}
	for i := 0; i < len(line); i++ {
		if line[i] < 0x20 || line[i] > 0x7e {
			return nil, fmt.Errorf("%w: invalid character 0x%02x at column %d", ErrATSyntax, line[i], i+1)
		}
	}
	s := strings.TrimSpace(line)
	if len(s) < 2 || !strings.EqualFold(s[:2], "AT") {
		return nil, fmt.Errorf("%w: line does not start with AT", ErrATSyntax)
	}
	s = s[2:]
	var out []atCmd
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return out, nil
		}
		c := upper(s[0])
		s = s[1:]
		switch {
		case c == '+':
			n := 0
			for n < len(s) && isAlnum(s[n]) {
				n++
			}
			if n == 0 {
				return nil, fmt.Errorf("%w: '+' without a command name", ErrATSyntax)
			}
			cmd := atCmd{Name: "+" + strings.ToUpper(s[:n])}
			s = s[n:]
			switch {
			case strings.HasPrefix(s, "=?"), strings.HasPrefix(s, "?"):
				cmd.Query = true
				s = s[strings.IndexByte(s, '?')+1:]
			case strings.HasPrefix(s, "="):
				cmd.Set = true
				end := strings.IndexByte(s, ';')
				if end < 0 {
					end = len(s)
				}
				cmd.Arg = strings.Trim(strings.TrimSpace(s[1:end]), `"`)
				s = s[end:]
			}
			s = strings.TrimLeft(s, " ")
			if s != "" && s[0] != ';' {
				return nil, fmt.Errorf("%w: unexpected %q after %s", ErrATSyntax, s, cmd.Name)
			}
			s = strings.TrimPrefix(s, ";")
			out = append(out, cmd)
		case c == 'D':
			if s != "" && (upper(s[0]) == 'T' || upper(s[0]) == 'P') {
				s = s[1:]
			}
			out = append(out, atCmd{Name: "D", Arg: strings.TrimSpace(s)})
			return out, nil
		case strings.IndexByte("AEHIOVZ", c) >= 0:
			n := 0
			for n < len(s) && s[n] >= '0' && s[n] <= '9' {
				n++
			}
			out = append(out, atCmd{Name: string(c), Arg: s[:n]})
			s = s[n:]
		default:
			return nil, fmt.Errorf("%w: unknown command %q", ErrATSyntax, string(c))
		}
	}
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 32
	}
	return c
}

func isAlnum(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}
