* Low-dropout regulator on SKY130 1.8 V devices: a five-transistor error amplifier (NMOS input
* pair, PMOS mirror) compares the divided output with an ideal 0.6 V reference and drives the gate
* of a PMOS pass device (10 parallel devices of w_pass each). Output capacitor with ESR; a 10 mA
* load. vinj breaks the loop at the error amplifier's gate (infinite impedance) so that an AC
* sweep measures the exact loop gain. W and L parameters are in metres.
vsup vin 0 dc 1.8 ac 0
vref ref 0 0.6
iref vin nref {ibias}
xtr nref nref 0 0 sky130_fd_pr__nfet_01v8 w={w_tail*1e6} l={l_tail*1e6}
xtail tail nref 0 0 sky130_fd_pr__nfet_01v8 w={w_tail*2e6} l={l_tail*1e6}
x1 x fbg tail 0 sky130_fd_pr__nfet_01v8 w={w_in*1e6} l={l_in*1e6}
x2 gate ref tail 0 sky130_fd_pr__nfet_01v8 w={w_in*1e6} l={l_in*1e6}
x3 x x vin vin sky130_fd_pr__pfet_01v8 w={w_ld*1e6} l={l_ld*1e6}
x4 gate x vin vin sky130_fd_pr__pfet_01v8 w={w_ld*1e6} l={l_ld*1e6}
xpass out gate vin vin sky130_fd_pr__pfet_01v8 w={w_pass*1e6} l={l_pass*1e6} m=10
r1 out fbd {r1}
r2 fbd 0 {r2}
vinj fbg fbd dc 0 ac 0
cout out esrn {cout}
resr esrn 0 {esr}
* The load sinks v(ild) amperes while the output is above about 0.1 V, and less as it falls
* to 0 V, as a real load would (an ideal current source would pull the output below ground).
vild ild 0 dc 10m
vsense out outl 0
bload outl 0 i=v(ild)*tanh(20*max(v(outl), 0))
