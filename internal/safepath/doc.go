// Package safepath opens directories that vsp writes into (the link
// directory, its runtime state directory) without trusting anything
// another user controls, in the manner of sshd's StrictModes: every
// directory from / down must be owned by root or by the process's
// effective user, a directory writable by other users is accepted only
// when it is sticky (like /tmp, where others cannot rename or remove what
// is not theirs), and a symlink on the way is followed only when root or
// the effective user owns it.
//
// Resolution is race-free: each component is opened relative to the
// already checked parent with O_PATH|O_NOFOLLOW, checked on the open file
// descriptor (fstat), and the result is a directory file descriptor on
// which the caller makes its files with the *at system calls; nobody can
// swap a component between the check and the use.
package safepath
