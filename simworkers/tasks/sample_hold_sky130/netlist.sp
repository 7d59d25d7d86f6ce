* Bootstrapped track-and-hold on SKY130 1.8 V devices, clocked at 100 MS/s. While clk is high
* (track) the bootstrap capacitor cboot sits between the input and the switch gate, so the gate
* follows vin + 1.8 V and the switch's on-resistance barely moves with the signal; while clk is
* low (hold) mch and mcl recharge cboot to 1.8 V and mgd (with its cascode mgc) pulls the gate
* to ground. In track, min connects cboot's bottom plate to the input and mtp its top to the gate. The input is
* a 1.4 Vpp sine of 31/64 of the clock rate (near Nyquist) around 0.9 V.
* W parameters are in metres; the hold capacitor and bootstrap capacitor in farads.
vdd vdd 0 1.8
vclk clk 0 pulse(0 1.8 0 50p 50p 4.9n 10n)
vclkb clkb 0 pulse(1.8 0 0 50p 50p 4.9n 10n)
vin in 0 sin(0.9 0.7 {31/(64*10e-9)})
* the sampling switch and the hold capacitor
xms in g out 0 sky130_fd_pr__nfet_01v8 w={w_sw*1e6} l=0.15
ch out 0 {c_hold}
* the bootstrap: cboot between bt (top) and bb (bottom)
cboot bt bb {c_boot}
xmcl bb clkb 0 0 sky130_fd_pr__nfet_01v8 w={w_chn*1e6} l=0.15
xmch bt g vdd bt sky130_fd_pr__pfet_01v8 w={w_chp*1e6} l=0.15
xmgd g clkb mid 0 sky130_fd_pr__nfet_01v8 w={w_off*1e6} l=0.15
xmgc mid vdd 0 0 sky130_fd_pr__nfet_01v8 w={w_off*1e6} l=0.15
xmin in g bb 0 sky130_fd_pr__nfet_01v8 w={w_bot*1e6} l=0.15
xmtp g clkb bt bt sky130_fd_pr__pfet_01v8 w={w_top*1e6} l=0.15
* the hold capacitance as a voltage, for the kT/C noise
vchv chv 0 {c_hold}
