package device

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// flashVersion is the current flash file format. Older versions are
// migrated in decodeFlash; newer ones are refused as corrupt.
const flashVersion = 1

// maxFlashSize bounds what the loader reads.
const maxFlashSize = 1 << 20

// flashImage is the content of the simulated flash memory.
type flashImage struct {
	Version  int       `json:"version"`
	Model    string    `json:"model,omitempty"`
	Settings *settings `json:"settings,omitempty"`
	SSL      *flashSSL `json:"ssl,omitempty"`
}

type flashSSL struct {
	Key  string `json:"key"`  // PKCS#1 PEM
	Cert string `json:"cert"` // PEM
}

// decodeFlash parses and checks a flash file. Any problem is reported as
// ErrFlashCorrupt.
func decodeFlash(data []byte) (*flashImage, error) {
	if len(data) > maxFlashSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrFlashCorrupt, maxFlashSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var img flashImage
	if err := dec.Decode(&img); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFlashCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrFlashCorrupt)
	}
	switch {
	case img.Version == 0:
		return nil, fmt.Errorf("%w: missing version", ErrFlashCorrupt)
	case img.Version > flashVersion:
		return nil, fmt.Errorf("%w: version %d is newer than this simulator (%d)", ErrFlashCorrupt, img.Version, flashVersion)
	}
	// Version 1 is current; future migrations go here.
	if img.SSL != nil {
		key, err := parseKeyPEM(img.SSL.Key)
		if err != nil {
			return nil, err
		}
		cert, err := parseCertPEM(img.SSL.Cert)
		if err != nil {
			return nil, err
		}
		if !certMatchesKey(cert, key) {
			return nil, fmt.Errorf("%w: certificate does not match the key", ErrFlashCorrupt)
		}
	}
	if img.Settings != nil {
		img.Settings.normalize()
		m, ok := lookupModel(img.Model)
		if !ok {
			m, _ = lookupModel("CSE-H25")
			if len(img.Settings.Lines) > 1 {
				m, _ = lookupModel("CSE-M32")
			}
		}
		if err := img.Settings.validate(m); err != nil {
			return nil, fmt.Errorf("%w: settings: %w", ErrFlashCorrupt, err)
		}
	}
	return &img, nil
}

// readFlash loads a flash file; a missing file yields (nil, nil).
func readFlash(path string) (*flashImage, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("device: flash: %w", err)
	}
	img, err := decodeFlash(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// writeFlash stores img at path atomically: temporary file in the same
// directory, fsync, rename, fsync of the directory; mode 0600.
func writeFlash(path string, img *flashImage) error {
	img.Version = flashVersion
	data, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return fmt.Errorf("device: flash: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("device: flash: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("device: flash: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("device: flash: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("device: flash: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("device: flash: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("device: flash: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("device: flash: sync dir: %w", err)
		}
	}
	return nil
}

// ApplyFlashSettings overlays the settings saved in the flash file at path
// onto cfg (a device's configuration lives in flash). A missing file, or a
// file without saved settings, leaves cfg unchanged. A corrupt file is
// reported with ErrFlashCorrupt and cfg is left unchanged. ezsim calls this
// and then re-applies the flags given explicitly on its command line.
func ApplyFlashSettings(cfg *Config, path string) error {
	img, err := readFlash(path)
	if err != nil {
		return err
	}
	if img == nil || img.Settings == nil {
		return nil
	}
	img.Settings.applyToConfig(cfg)
	return nil
}
