* AC-coupled instrumentation amplifier on SKY130 1.8 V devices: input capacitors cin couple a
* differential signal into a current-mirror (symmetrical) OTA; feedback capacitor cf with a large
* resistor rf in parallel sets the mid-band gain cin/cf and the high-pass corner 1/(2 pi rf cf);
* the non-inverting side mirrors the network to the 0.9 V reference. 10 pF load.
* OTA: NMOS input pair (tail mirrored 1:1 from ibias), diode-connected PMOS loads mirrored with
* ratio w_po/w_pl to the output, an NMOS mirror turning one side around.
* Input sources: vip and vin carry +-0.5 (differential) or 1 (common mode) AC volts as the
* testbench sets them. W and L parameters are in metres.
vdd vdd 0 1.8
vref ref 0 0.9
vip ip 0 dc 0.9 ac 0.5
vin in 0 dc 0.9 ac 0.5 180
c1 ip x1 {cin}
cf1 x1 out {cf}
rf1 x1 out {rf}
c2 in x2 {cin}
cf2 x2 ref {cf}
rf2 x2 ref {rf}
iref vdd nref {ibias}
xtr nref nref 0 0 sky130_fd_pr__nfet_01v8 w={w_tail*1e6} l={l_tail*1e6}
xtail tail nref 0 0 sky130_fd_pr__nfet_01v8 w={w_tail*1e6} l={l_tail*1e6}
x1 da x1 tail 0 sky130_fd_pr__nfet_01v8 w={w_in*1e6} l={l_in*1e6}
x2 db x2 tail 0 sky130_fd_pr__nfet_01v8 w={w_in*1e6} l={l_in*1e6}
x3 da da vdd vdd sky130_fd_pr__pfet_01v8 w={w_pl*1e6} l={l_p*1e6}
x4 db db vdd vdd sky130_fd_pr__pfet_01v8 w={w_pl*1e6} l={l_p*1e6}
x5 dm da vdd vdd sky130_fd_pr__pfet_01v8 w={w_po*1e6} l={l_p*1e6}
x6 out db vdd vdd sky130_fd_pr__pfet_01v8 w={w_po*1e6} l={l_p*1e6}
x7 dm dm 0 0 sky130_fd_pr__nfet_01v8 w={w_nm*1e6} l={l_nm*1e6}
x8 out dm 0 0 sky130_fd_pr__nfet_01v8 w={w_nm*1e6} l={l_nm*1e6}
cl out 0 10p
