package config

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsExamples parses every ```toml block of docs/configuration.md, so
// the reference cannot drift from the code. Placeholder pins ("sha256:…")
// are replaced by a real one.
func TestDocsExamples(t *testing.T) {
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatalf("docs/configuration.md, which this test keeps in step with the code: %v", err)
	}
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(string(data), -1)
	if len(blocks) < 4 {
		t.Fatalf("found %d toml blocks", len(blocks))
	}
	placeholder := regexp.MustCompile(`sha256:[^"]*…[^"]*`)
	for i, b := range blocks {
		doc := placeholder.ReplaceAllString(b[1], pin)
		if strings.Contains(doc, "vsp.toml") {
			if _, err := ParseDaemon("vsp.toml", []byte(doc), testPaths); err != nil {
				t.Errorf("daemon example %d: %v\n%s", i, err, doc)
			}
			continue
		}
		if _, err := Parse("plc1", "", []byte(doc)); err != nil {
			t.Errorf("port example %d: %v\n%s", i, err, doc)
		}
	}
}
