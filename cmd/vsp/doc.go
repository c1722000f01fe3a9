// Command vsp creates virtual serial ports bridged to networked serial
// devices (Sollae ezTCP and other TLS/TCP serial device servers), and runs
// them as a daemon or an OS service.
package main
