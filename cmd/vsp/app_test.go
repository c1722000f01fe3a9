package main

import (
	"slices"
	"testing"
)

func TestInterspersed(t *testing.T) {
	app := newApp(&env{})
	for _, tc := range []struct{ in, want []string }{
		{[]string{"vsp"}, []string{"vsp"}},
		{[]string{"vsp", "create", "a", "--device", "h:1"}, []string{"vsp", "create", "--device", "h:1", "a"}},
		{[]string{"vsp", "create", "--device=h:1", "a", "--force"}, []string{"vsp", "create", "--device=h:1", "--force", "a"}},
		{[]string{"vsp", "create", "a", "--force", "--link", "/x", "b"}, []string{"vsp", "create", "--force", "--link", "/x", "a", "b"}},
		{[]string{"vsp", "delete", "a", "--", "--b"}, []string{"vsp", "delete", "a", "--", "--b"}},
		{[]string{"vsp", "status", "p", "--json"}, []string{"vsp", "status", "--json", "p"}},
		{[]string{"vsp", "service", "install", "--user"}, []string{"vsp", "service", "install", "--user"}},
		{[]string{"vsp", "nosuch", "a", "--x"}, []string{"vsp", "nosuch", "a", "--x"}},
	} {
		if got := interspersed(app, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("interspersed(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
