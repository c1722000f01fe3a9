package device

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// errUsage reports a malformed set command.
var errUsage = errors.New("device: usage")

// consoleSet applies a console "set" command. Serial settings go through
// (*Port).SetSerial and apply at once; the others are validated against the
// model limits and kept for the next save and reset. On error nothing
// changes.
func (d *Device) consoleSet(args []string) error {
	if len(args) < 2 {
		return errUsage
	}
	key := strings.ToLower(args[0])
	if key == "com1" || key == "com2" {
		if len(args) == 2 && key == "com2" {
			return d.setValue("com2", args[1])
		}
		if len(args) != 3 {
			return errUsage
		}
		p := d.Port(key)
		if p == nil {
			return &LimitError{Rule: RuleModelPorts, Detail: d.model.name + " has no " + strings.ToUpper(key)}
		}
		line := p.Serial()
		if err := applySerialField(&line, strings.ToLower(args[1]), args[2]); err != nil {
			return err
		}
		return p.SetSerial(line)
	}
	if len(args) != 2 {
		return errUsage
	}
	return d.setValue(key, args[1])
}

// applySerialField sets one field of s from console text.
func applySerialField(s *Serial, field, v string) error {
	num := func() (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("%w: %s %q is not a number", ErrInvalid, field, v)
		}
		return n, nil
	}
	var err error
	switch field {
	case "baud":
		s.Baud, err = num()
	case "data":
		s.DataBits, err = num()
	case "stop":
		s.StopBits, err = num()
	case "txi":
		s.TXInterval, err = num()
	case "parity":
		s.Parity = strings.ToLower(v)
	case "flow":
		s.Flow = strings.ToLower(v)
	case "dtrdsr":
		s.DTRDSR, err = parseOnOff(v)
	default:
		return errUsage
	}
	return err
}

func parseOnOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "1", "yes", "true":
		return true, nil
	case "off", "0", "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("%w: %q is not on or off", ErrInvalid, v)
}

// setValue changes one non-serial setting after validating the result.
func (d *Device) setValue(key, v string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	next := d.set.clone()
	var err error
	num := func() int {
		n, e := strconv.Atoi(v)
		if e != nil {
			err = fmt.Errorf("%w: %s %q is not a number", ErrInvalid, key, v)
		}
		return n
	}
	switch key {
	case "ssl":
		next.SSL, err = parseOnOff(v)
	case "rfc2217":
		next.RFC2217, err = parseOnOff(v)
	case "ssh":
		next.SSH, err = parseOnOff(v)
	case "mm":
		next.MultiMonitoring, err = parseOnOff(v)
	case "sendmac":
		next.SendMAC, err = parseOnOff(v)
	case "com2":
		next.COM2, err = parseOnOff(v)
		if next.COM2 && len(next.Lines) < 2 {
			next.Lines = append(next.Lines, Serial{}.withDefaults())
		}
	case "mode":
		next.Mode = strings.ToUpper(v)
	case "ip":
		next.IP = v
	case "mask":
		next.Mask = v
	case "gateway":
		next.Gateway = v
	case "dns":
		next.DNS = v
	case "timeout":
		next.TimeoutSec = num()
	case "eventbyte":
		next.EventByte = num()
	case "keybits":
		next.KeyBits = num()
	case "peer":
		next.Peer = v
	case "bytecount":
		next.ByteCount = num()
	case "guardtime":
		next.GuardTime = num()
	case "dataframe":
		next.DataFrame = num()
	case "second":
		next.SecondClient = strings.ToLower(v)
	default:
		return errUsage
	}
	if err != nil {
		return err
	}
	if err := next.validate(d.model); err != nil {
		return err
	}
	if next.Mode != d.set.Mode {
		if err := checkMode(next.Mode); err != nil {
			return err
		}
	}
	d.set = next
	return nil
}
