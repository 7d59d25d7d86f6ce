* Bandgap voltage reference on generic 180 nm models with vertical PNPs, voltage-mode: a PMOS
* device (gate driven by the error amplifier) holds vref; R2 from vref feeds Q1 (area 1) and an
* equal R2 feeds R1 in series with Q2 (area 8). The amplifier forces va = vb, so that
* vref = VBE1 + (R2/R1) VT ln 8. The error amplifier is a PMOS-input five-transistor OTA; cc
* from its output to vdd compensates the loop.
vdd vdd 0 1.8 ac 0
mp vref vg vdd vdd pch w={w_p} l={l_p}
r2a vref va {r2}
q1 0 0 va pnp_v area=1
r2b vref vb {r2}
r1 vb vc {r1}
q2 0 0 vc pnp_v area=8
* error amplifier: vb on the diode side (non-inverting), va on the output side
iamp nb 0 {ibias}
mb nb nb vdd vdd pch w={w_at} l={l_at}
mt tail nb vdd vdd pch w={w_at} l={l_at}
ma1 xa vb tail vdd pch w={w_ai} l={l_ai}
ma2 vg va tail vdd pch w={w_ai} l={l_ai}
mn1 xa xa 0 0 nch w={w_an} l={l_an}
mn2 vg xa 0 0 nch w={w_an} l={l_an}
cc vg vdd {cc}
.nodeset v(vg)=0.6 v(vref)=1.2
