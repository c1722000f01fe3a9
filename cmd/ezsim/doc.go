// Command ezsim simulates the device side of Sollae ezTCP serial-to-Ethernet
// converters (CSE-H25, CSE-M73, CSE-M32, CSE-H20, CSE-H21): T2S, COD, ATC and
// U2S communication modes with optional SSL, telnet console, flash
// persistence and status.
// See docs/simulator.md.
package main
