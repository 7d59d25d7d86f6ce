* Flip-around switched-capacitor gain-of-two stage (the residue amplifier of a pipeline MDAC) on
* SKY130 1.8 V devices, with ideal clocked switches. Phase 1 (0-5 ns): cs and cf sample vin on
* their bottom plates while the OTA is reset in unity feedback (its inverting input x at its own
* offset-corrected virtual ground). Phase 2 (from 5.1 ns): cf flips around to the output and cs
* goes to vcm, so out - vcm = (1 + cs/cf)(vin - vcm) = 0.4 V for the 0.2 V input step.
* The OTA is a five-transistor NMOS-input amplifier with a PMOS mirror, biased by i_bias through
* an NMOS diode; 200 fF loads the output. W and L in metres, i_bias in amperes, c_s in farads.
vdd vdd 0 1.8
vcm cm 0 0.9
vin in 0 1.1
vp1 p1 0 pulse(1.8 0 5n 20p 20p 100n 200n)
vp2 p2 0 pulse(0 1.8 5.1n 20p 20p 100n 200n)
.model sclk sw vt=0.9 vh=0.05 ron=100 roff=1e12
* phase 1: sample and reset
s1 bs in p1 0 sclk
s2 bf in p1 0 sclk
s3 out x p1 0 sclk
* phase 2: flip around
s4 bs cm p2 0 sclk
s5 bf out p2 0 sclk
cs bs x {c_s}
cf bf x {c_s}
* the OTA: inverting input x, non-inverting input cm
ib vdd nb {i_bias}
xmb nb nb 0 0 sky130_fd_pr__nfet_01v8 w={w_tail*1e6} l={l_tail*1e6}
xmt tail nb 0 0 sky130_fd_pr__nfet_01v8 w={2*w_tail*1e6} l={l_tail*1e6}
xm1 d1 cm tail 0 sky130_fd_pr__nfet_01v8 w={w_in*1e6} l={l_in*1e6}
xm2 out x tail 0 sky130_fd_pr__nfet_01v8 w={w_in*1e6} l={l_in*1e6}
xm3 d1 d1 vdd vdd sky130_fd_pr__pfet_01v8 w={w_ld*1e6} l={l_ld*1e6}
xm4 out d1 vdd vdd sky130_fd_pr__pfet_01v8 w={w_ld*1e6} l={l_ld*1e6}
cl out 0 200f
* the sampling capacitance as a voltage, for the kT/C noise
vcsv csv 0 {c_s}
