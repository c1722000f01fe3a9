package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// This file turns TOML bytes into Go values while remembering where every
// key is, so that problems found after decoding (an out-of-range baud rate, a
// pin in the wrong format) are reported at the right line. It works in three
// passes:
//
//  1. toml.Unmarshal into a generic map checks the whole document against
//     the TOML specification (syntax, duplicate keys, redefined tables); the
//     first such error is fatal, as nothing after it can be trusted.
//  2. The go-toml unstable parser walks the same bytes and records the
//     position of every key, table header and array element.
//  3. The generic map is checked against a schema: unknown keys (with a
//     "did you mean") and wrong types are collected, all of them.

// maxFileSize bounds what Load and LoadDaemon read (1 MiB): configuration
// files are a few hundred bytes, and the cap keeps a mistaken file, such as
// a log someone renamed to .toml, from eating memory. A bigger file is an
// error (docs/configuration.md, "Port files").
const maxFileSize = 1 << 20

// kind is the TOML shape a schema key accepts.
type kind int

const (
	kTable    kind = iota + 1
	kString        // TOML string
	kInt           // TOML integer
	kBool          // TOML boolean
	kStrings       // array of strings
	kDuration      // string holding a Go duration ("5s")
	kSize          // integer bytes or string with a unit ("64KiB")
	kMode          // octal string ("0660") or octal integer (0o660)
)

func (k kind) want() string {
	switch k {
	case kTable:
		return "a table"
	case kString:
		return "a string"
	case kInt:
		return "an integer"
	case kBool:
		return "a boolean (true or false)"
	case kStrings:
		return `an array of strings, e.g. ["10.1.0.1:1470", "10.1.0.2:1470"]`
	case kDuration:
		return `a duration string, e.g. "5s" or "250ms"`
	case kSize:
		return `an integer number of bytes or a string such as "64KiB" or "1MiB"`
	case kMode:
		return `an octal permission string, e.g. "0660"`
	}
	return "a value"
}

func (k kind) accepts(v any) bool {
	switch k {
	case kTable:
		_, ok := v.(map[string]any)
		return ok
	case kString, kDuration:
		_, ok := v.(string)
		return ok
	case kInt:
		_, ok := v.(int64)
		return ok
	case kBool:
		_, ok := v.(bool)
		return ok
	case kStrings:
		a, ok := v.([]any)
		if !ok {
			return false
		}
		for _, e := range a {
			if _, ok := e.(string); !ok {
				return false
			}
		}
		return true
	case kSize, kMode:
		switch v.(type) {
		case string, int64:
			return true
		}
	}
	return false
}

// spec describes one key of a file format.
type spec struct {
	key  string // dotted path
	kind kind
	hint string // appended to type errors
}

// position of a key in the document, and its raw value text if it has one.
type position struct {
	line, col int
	raw       string
}

// index maps a key path (parts joined with "\x00"; array elements are parts
// "[0]", "[1]"...) to where it first appears.
type index map[string]position

// pathKey converts a dotted display key such as "trust.pin" or "devices[1]"
// into an index key. Schema keys never contain dots or brackets inside a part.
func pathKey(dotted string) string {
	s := strings.ReplaceAll(dotted, "[", ".[")
	return strings.ReplaceAll(s, ".", "\x00")
}

// lookup finds the position of a dotted key, falling back to its closest
// enclosing table that appears in the document, then to 1:1. A nil index
// (a Port built in code) has no positions at all.
func (ix index) lookup(dotted string) position {
	if ix == nil {
		return position{}
	}
	k := pathKey(dotted)
	for {
		if p, ok := ix[k]; ok {
			return p
		}
		i := strings.LastIndexByte(k, 0)
		if i < 0 {
			return position{line: 1, col: 1}
		}
		k = k[:i]
	}
}

// document is a decoded TOML file plus what is needed to report problems in
// it.
type document struct {
	file  string
	root  map[string]any
	ix    index
	specs map[string]spec
	errs  []*Error
	bad   map[string]bool // keys already reported; validation skips them
}

func (d *document) errorf(key string, kind error, format string, args ...any) {
	d.errorAt(d.ix.lookup(key), key, kind, format, args...)
}

func (d *document) errorAt(p position, key string, kind error, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: p.line, Col: p.col, Key: key, Err: reasonf(kind, format, args...)})
	if d.bad == nil {
		d.bad = map[string]bool{}
	}
	d.bad[key] = true
}

// parseDocument runs the three passes described at the top of this file.
// A TOML-level error is returned as the only error; schema errors are
// collected in the document.
func parseDocument(file string, data []byte, specs []spec) (*document, *Error) {
	var root map[string]any
	if err := toml.Unmarshal(data, &root); err != nil {
		return nil, tomlError(file, err)
	}
	if root == nil {
		root = map[string]any{}
	}
	d := &document{file: file, root: root, ix: buildIndex(data), specs: map[string]spec{}}
	for _, s := range specs {
		d.specs[s.key] = s
	}
	d.check(root, nil)
	return d, nil
}

// tomlError converts an error from go-toml into an *Error.
func tomlError(file string, err error) *Error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		return &Error{File: file, Line: max(line, 1), Col: max(col, 1), Key: displayKey(de.Key()), Err: reasonf(ErrSyntax, "%s", msg)}
	}
	return &Error{File: file, Line: 1, Col: 1, Err: reasonf(ErrSyntax, "%s", strings.TrimPrefix(err.Error(), "toml: "))}
}

// displayKey joins key parts with dots, quoting parts that are not bare
// TOML keys.
func displayKey(parts []string) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = p
		if p == "" || strings.IndexFunc(p, func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-')
		}) >= 0 {
			if !strings.HasPrefix(p, "[") || !strings.HasSuffix(p, "]") {
				out[i] = strconv.Quote(p)
			}
		}
	}
	s := strings.Join(out, ".")
	return strings.ReplaceAll(s, ".[", "[")
}

// buildIndex records the position of every key in data, which must already
// be known to be valid TOML.
func buildIndex(data []byte) index {
	ix := index{}
	lines := []int{0}
	for i, c := range data {
		if c == '\n' {
			lines = append(lines, i+1)
		}
	}
	at := func(off uint32) position {
		o := int(off)
		l := sort.Search(len(lines), func(i int) bool { return lines[i] > o }) - 1
		return position{line: l + 1, col: o - lines[l] + 1}
	}
	mark := func(path []string, p position) {
		k := strings.Join(path, "\x00")
		if _, ok := ix[k]; !ok {
			ix[k] = p
		}
	}
	rawOf := func(n *unstable.Node) string {
		end := min(int(n.Raw.Offset)+int(n.Raw.Length), len(data))
		s := string(data[min(int(n.Raw.Offset), end):end])
		if len(s) > 80 {
			s = s[:80]
		}
		return s
	}
	keyOf := func(n *unstable.Node) ([]string, uint32) {
		var parts []string
		var off uint32
		it := n.Key()
		for it.Next() {
			if parts == nil {
				off = it.Node().Raw.Offset
			}
			parts = append(parts, string(it.Node().Data))
		}
		return parts, off
	}
	var keyval func(prefix []string, n *unstable.Node)
	keyval = func(prefix []string, n *unstable.Node) {
		parts, off := keyOf(n)
		full := append(append([]string(nil), prefix...), parts...)
		p := at(off)
		for i := len(prefix) + 1; i < len(full); i++ {
			mark(full[:i], p) // implicit tables of a dotted key
		}
		v := n.Value()
		p.raw = rawOf(v)
		mark(full, p)
		switch v.Kind {
		case unstable.InlineTable:
			it := v.Children()
			for it.Next() {
				if it.Node().Kind == unstable.KeyValue {
					keyval(full, it.Node())
				}
			}
		case unstable.Array:
			it := v.Children()
			for i := 0; it.Next(); i++ {
				e := it.Node()
				if e.Raw.Length > 0 {
					ep := at(e.Raw.Offset)
					ep.raw = rawOf(e)
					mark(append(full[:len(full):len(full)], "["+strconv.Itoa(i)+"]"), ep)
				}
			}
		}
	}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, off := keyOf(e)
			table = parts
			for i := 1; i <= len(parts); i++ {
				mark(parts[:i], at(off))
			}
		case unstable.KeyValue:
			keyval(table, e)
		}
	}
	return ix
}

// check walks the decoded map against the schema, reporting unknown keys
// and values of the wrong type.
func (d *document) check(m map[string]any, prefix []string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		path := append(prefix[:len(prefix):len(prefix)], k)
		dotted := strings.Join(path, ".")
		s, ok := d.specs[dotted]
		if !ok || strings.Contains(k, ".") {
			_, isTable := v.(map[string]any)
			msg := "unknown key"
			if isTable {
				msg = "unknown table"
			}
			if sug := d.suggest(path, isTable); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			} else if len(prefix) == 0 {
				msg += " (see docs/configuration.md for the keys of this file)"
			}
			p, ok := d.ix[strings.Join(path, "\x00")]
			if !ok {
				p = d.ix.lookup(strings.Join(prefix, "."))
			}
			d.errorAt(p, displayKey(path), ErrUnknownKey, "%s", msg)
			continue
		}
		if !s.kind.accepts(v) {
			msg := fmt.Sprintf("want %s, got %s", s.kind.want(), describe(v))
			if s.hint != "" {
				msg += " " + s.hint
			}
			d.errorf(dotted, ErrType, "%s", msg)
			continue
		}
		if s.kind == kTable {
			d.check(v.(map[string]any), path)
		}
	}
}

// describe names a decoded TOML value for a type error.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case nil:
		return "nothing"
	default:
		return "a date/time"
	}
}

// suggest returns the known key closest to an unknown one, or "".
func (d *document) suggest(path []string, isTable bool) string {
	full := strings.ToLower(strings.Join(path, "."))
	last := strings.ToLower(path[len(path)-1])
	if len(full) > 64 {
		return ""
	}
	best, bestScore := "", 1<<30
	keys := make([]string, 0, len(d.specs))
	for k := range d.specs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if (d.specs[k].kind == kTable) != isTable {
			continue
		}
		score := levenshtein(full, k)
		kl := k[strings.LastIndexByte(k, '.')+1:]
		if s := levenshtein(last, kl); s < score && (s == 0 || s*3 <= len(kl)) {
			score = s
		}
		if score < bestScore {
			best, bestScore = k, score
		}
	}
	if bestScore <= 2 || bestScore*3 <= len(best) {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c = 1 + min(prev[j-1], prev[j], cur[j-1])
			}
			cur[j] = c
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// get returns the value at a dotted path if it is present and passed check.
func (d *document) get(dotted string) (any, bool) {
	if d.bad[dotted] {
		return nil, false
	}
	var cur any = d.root
	for _, p := range strings.Split(dotted, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func (d *document) has(dotted string) bool {
	_, ok := d.get(dotted)
	return ok
}

func (d *document) str(dotted string) string {
	v, _ := d.get(dotted)
	s, _ := v.(string)
	return s
}

func (d *document) boolean(dotted string) bool {
	v, _ := d.get(dotted)
	b, _ := v.(bool)
	return b
}

func (d *document) strs(dotted string) []string {
	v, ok := d.get(dotted)
	if !ok {
		return nil
	}
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, e := range a {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// integer returns an integer key. An explicit 0 is reported here, because
// after decoding 0 means "use the default".
func (d *document) integer(dotted string, lo, hi int64) int {
	v, ok := d.get(dotted)
	if !ok {
		return 0
	}
	n, _ := v.(int64)
	if n < lo || n > hi {
		d.errorf(dotted, ErrInvalid, "want %d..%d, got %d", lo, hi, n)
		return 0
	}
	return int(n)
}

// duration returns a Go duration key; it must be positive.
func (d *document) duration(dotted string) time.Duration {
	s := d.str(dotted)
	if !d.has(dotted) {
		return 0
	}
	t, err := ParseDuration(s)
	if err != nil {
		d.errorf(dotted, ErrInvalid, "%v", err)
		return 0
	}
	return t
}

// size returns a byte size key.
func (d *document) size(dotted string) ByteSize {
	v, ok := d.get(dotted)
	if !ok {
		return 0
	}
	var n ByteSize
	switch v := v.(type) {
	case int64:
		n = ByteSize(v)
	case string:
		var err error
		if n, err = ParseByteSize(v); err != nil {
			d.errorf(dotted, ErrInvalid, "%s", strings.TrimPrefix(err.Error(), "config: "))
			return 0
		}
	}
	if n <= 0 {
		d.errorf(dotted, ErrInvalid, "want %v..%v, got %d", MinBuffer, MaxBuffer, n)
		return 0
	}
	return n
}

// mode returns a permission key written as an octal string or a TOML octal
// integer (0o660); a decimal integer such as 660 is refused, as it almost
// never means what was intended.
func (d *document) mode(dotted string) uint32 {
	v, ok := d.get(dotted)
	if !ok {
		return 0
	}
	var m uint64
	switch v := v.(type) {
	case int64:
		raw := strings.ReplaceAll(d.ix.lookup(dotted).raw, "_", "")
		if !strings.HasPrefix(raw, "0o") {
			d.errorf(dotted, ErrInvalid, `want an octal mode written as a string ("0660") or as 0o660, got decimal %d`, v)
			return 0
		}
		if v < 0 || v > 0o777 {
			d.errorf(dotted, ErrInvalid, "want 0o1..0o777, got 0o%o", v)
			return 0
		}
		m = uint64(v)
	case string:
		fm, err := ParseMode(v)
		if err != nil {
			d.errorf(dotted, ErrInvalid, "%s", err.Error())
			return 0
		}
		m = uint64(fm)
	}
	if m == 0 {
		d.errorf(dotted, ErrInvalid, "mode 0 would make the port unusable; want e.g. \"0660\", or leave the key out for the default")
		return 0
	}
	return uint32(m)
}
