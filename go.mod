module github.com/vsp-dev/vsp

go 1.26
