* 8-bit binary-weighted current-steering DAC on SKY130 1.8 V devices. Bit k has 2^k unit cells
* (m=2^k): an NMOS current source mirrored from a diode fed by i_unit, an NMOS cascode biased at
* v_cas, and an NMOS switch pair that steers the cell's current from outp (bit set) or from outn.
* Each output is loaded by 500 ohm to vdd and 200 fF to ground. The code is the voltage of vcode,
* decoded into switch gate voltages by behavioural sources; a dc sweep gives the transfer curve,
* and in a transient the code steps from 0 to full scale at 2 ns.
* W and L parameters are in metres, i_unit in amperes, v_cas in volts.
vdd vdd 0 1.8
vcode code 0 dc 0 pwl(0 0 2n 0 2.05n 255)
vcas cas 0 {v_cas}
iref vdd bias {i_unit}
xmb bias bias 0 0 sky130_fd_pr__nfet_01v8 w={w_cs*1e6} l={l_cs*1e6}
.subckt dacbit on op code vb cas k=0
xcs s vb 0 0 sky130_fd_pr__nfet_01v8 w={w_cs*1e6} l={l_cs*1e6} m={pow(2,k)}
xcc d cas s 0 sky130_fd_pr__nfet_01v8 w={w_cas*1e6} l={l_cas*1e6} m={pow(2,k)}
xsp op gp d 0 sky130_fd_pr__nfet_01v8 w={w_sw*1e6} l={l_sw*1e6} m={pow(2,k)}
xsn on gn d 0 sky130_fd_pr__nfet_01v8 w={w_sw*1e6} l={l_sw*1e6} m={pow(2,k)}
* bit k of the code, 0 or 1: the switch on the outp side conducts when it is set
bgp gp 0 v=1.8*(floor((v(code)+0.5)/pow(2,k)) - 2*floor((v(code)+0.5)/pow(2,k+1)))
bgn gn 0 v=1.8*(1 - (floor((v(code)+0.5)/pow(2,k)) - 2*floor((v(code)+0.5)/pow(2,k+1))))
.ends
x0 outn outp code bias cas dacbit k=0
x1 outn outp code bias cas dacbit k=1
x2 outn outp code bias cas dacbit k=2
x3 outn outp code bias cas dacbit k=3
x4 outn outp code bias cas dacbit k=4
x5 outn outp code bias cas dacbit k=5
x6 outn outp code bias cas dacbit k=6
x7 outn outp code bias cas dacbit k=7
rp vdd outp 500
rn vdd outn 500
cp outp 0 200f
cn outn 0 200f
