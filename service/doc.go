// Package service is the vsp daemon: it bridges each configured virtual port
// to its device link, keeps ports alive across link outages, and exposes
// their live state.
package service
