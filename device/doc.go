// Package device simulates the device side of a Sollae ezTCP serial-to-Ethernet
// converter: product models and their limits, communication modes, the serial
// side, the telnet console with RSA key and certificate generation, flash
// persistence and status.
package device
