package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vsp-dev/vsp/internal/logging"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError marks errors in how the command was called (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// env holds what the subcommands share: the injected streams, and the
// daemon settings in effect once a command that takes them has started.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	settings       *settings
}

// run executes the vsp command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	app := newApp(e)
	if words, ok := completionArgs(args[1:]); ok {
		complete(ctx, app, words, stdout) // never runs a command
		return exitOK
	}
	err := app.RunContext(ctx, interspersed(app, args))
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "vsp: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitError
}

func newApp(e *env) *cli.App {
	app := &cli.App{
		Name:  "vsp",
		Usage: "virtual serial ports bridged to networked serial devices over TLS or TCP",
		Description: "vsp exposes a networked serial device (such as a Sollae ezTCP) as a local tty,\n" +
			"e.g. /dev/ttyVSP0, for software that expects a COM port. The tty outlives\n" +
			"every network outage: the application never sees the device reboot.\n\n" +
			"Exit status: 0 success; 1 failure (the message says what failed, and the fix);\n" +
			"2 a usage error (unknown command, bad flag or argument). `vsp create` exits 0\n" +
			"only once its port is up; see each command's help.",
		Writer:          e.stdout,
		ErrWriter:       e.stderr,
		Reader:          e.stdin,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {}, // run() reports errors and picks the exit code
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		Commands: []*cli.Command{
			runCommand(e),
			configCommand(e),
			createCommand(e),
			deleteCommand(e),
			listCommand(e),
			statusCommand(e),
			monitorCommand(e),
			trustCommand(e),
			serviceCommand(e),
			demoCommand(e),
			versionCommand(e),
			completionCommand(e),
			genDocsCommand(e), // hidden: make docs
		},
	}
	// A flag error in a subcommand is a usage error too (exit code 2), and
	// so is a positional argument the command does not take.
	var mark func(cmds []*cli.Command, parent string)
	mark = func(cmds []*cli.Command, parent string) {
		for _, c := range cmds {
			if c.OnUsageError == nil {
				c.OnUsageError = app.OnUsageError
			}
			checkArgs(c, strings.TrimSpace(parent+" "+c.Name))
			mark(c.Subcommands, parent+" "+c.Name)
		}
	}
	mark(app.Commands, "")
	wireSettings(e, app.Commands)
	restrictPlatform(app.Commands) // run, demo, service install: Linux only
	return app
}

// checkArgs makes cmd refuse positional arguments it does not take, before
// its action runs. What a command takes is what its ArgsUsage declares: one
// argument per word ("NAME", "HOST:PORT", "bash|zsh|fish"), optional when in
// brackets ("[NAME]"); no ArgsUsage means none. A command with subcommands
// and no action of its own takes only a subcommand name.
func checkArgs(cmd *cli.Command, name string) {
	lo, hi := 0, 0
	for _, w := range strings.Fields(cmd.ArgsUsage) {
		hi++
		if !strings.HasPrefix(w, "[") {
			lo++
		}
		if strings.HasSuffix(strings.TrimSuffix(w, "]"), "...") { // "[NAME...]": any number
			hi = math.MaxInt
		}
	}
	action := cmd.Action
	group := len(cmd.Subcommands) > 0 // before urfave/cli adds "help"
	if action == nil {
		if !group {
			return
		}
		action = cli.ShowSubcommandHelp
	}
	cmd.Action = func(c *cli.Context) error {
		n := c.NArg()
		switch {
		case n > hi && hi == 0 && group:
			return usagef("%s: unknown command %q (see `vsp %s --help`)", name, c.Args().Get(hi), name)
		case n > hi && hi == 0:
			return usagef("%s: unexpected argument %q: %s takes no arguments", name, c.Args().Get(hi), name)
		case n > hi:
			return usagef("%s: unexpected argument %q after %s", name, c.Args().Get(hi), cmd.ArgsUsage)
		case n < lo:
			return usagef("%s: missing %s (usage: vsp %s %s)", name, cmd.ArgsUsage, name, cmd.ArgsUsage)
		}
		return action(c)
	}
}

// repeatWindow is how long identical warnings stay rate-limited in the
// logs (the first is written, then one with the count of those dropped).
const repeatWindow = time.Minute

// newLogger returns the logger for a command: text, or JSON when format
// says so. Text written to the systemd journal (stderr is $JOURNAL_STREAM)
// starts each line with its priority, so `journalctl -p warning` works.
// Identical warnings are rate-limited by the Dedup it returns too (whose
// Flush writes the counts still pending, at exit).
func newLogger(w io.Writer, format string, level slog.Leveler) (*slog.Logger, *logging.Dedup, error) {
	opts := &slog.HandlerOptions{Level: level}
	var mk func(io.Writer) slog.Handler
	switch format {
	case "", "auto", "text":
		mk = func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, opts) }
	case "json":
		mk = func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, opts) }
	default:
		return nil, nil, usagef("--log-format: want auto, text or json, got %q", format)
	}
	h := mk(w)
	if f, ok := w.(*os.File); ok && format != "json" && logging.OnJournal(f, os.Getenv("JOURNAL_STREAM")) {
		h = logging.Journal(w, mk)
	}
	d := logging.NewDedup(h, repeatWindow)
	return slog.New(d), d, nil
}

// interspersed lets flags follow a subcommand's arguments, as in
// `vsp create NAME --device HOST:PORT` (urfave/cli/v2 stops parsing flags
// at the first argument): it moves the arguments of the (sub)command after
// its flags. Everything after "--" stays as it is.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	cmds := app.Commands
	i := 1
	// Walk down the (sub)command names.
	var cmd *cli.Command
	for i < len(args) {
		var next *cli.Command
		for _, c := range cmds {
			if c.HasName(args[i]) {
				next = c
			}
		}
		if next == nil {
			break
		}
		cmd = next
		cmds = cmd.Subcommands
		out = append(out, args[i])
		i++
	}
	if cmd == nil || len(cmd.Subcommands) > 0 {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		df, ok := f.(cli.DocGenerationFlag)
		for _, n := range f.Names() {
			takesValue[n] = ok && df.TakesValue()
		}
	}
	var flags, positional []string
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i:]...)
			i = len(args)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	out = append(out, flags...)
	return append(out, positional...)
}
