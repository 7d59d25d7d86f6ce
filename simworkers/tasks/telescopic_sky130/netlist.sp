* Single-ended telescopic-cascode OTA on SKY130 1.8 V devices: NMOS input pair with NMOS
* cascodes, a PMOS low-voltage cascode current-mirror load, an NMOS tail mirrored from ibias.
* Cascode gates are biased by ideal sources vbn and vbp (the designer's choice).
* W and L parameters are in metres; the SKY130 library scales its netlist units to micrometres.
vdd vdd 0 1.8
vcm cm 0 0.9
vin inp cm dc 0 ac 1
lfb out inn 1e6
cfb inn 0 1
vbn bn 0 {vbn}
vbp bp 0 {vbp}
iref vdd nref {ibias}
xtr nref nref 0 0 sky130_fd_pr__nfet_01v8 w={w_tail*2e5} l={l_tail*1e6}
xtail tail nref 0 0 sky130_fd_pr__nfet_01v8 w={w_tail*1e6} l={l_tail*1e6}
x1 d1 inp tail 0 sky130_fd_pr__nfet_01v8 w={w_in*1e6} l={l_in*1e6}
x2 d2 inn tail 0 sky130_fd_pr__nfet_01v8 w={w_in*1e6} l={l_in*1e6}
x3 xl bn d1 0 sky130_fd_pr__nfet_01v8 w={w_nc*1e6} l={l_nc*1e6}
x4 out bn d2 0 sky130_fd_pr__nfet_01v8 w={w_nc*1e6} l={l_nc*1e6}
x5 xl bp a1 vdd sky130_fd_pr__pfet_01v8 w={w_pc*1e6} l={l_pc*1e6}
x6 out bp a2 vdd sky130_fd_pr__pfet_01v8 w={w_pc*1e6} l={l_pc*1e6}
x7 a1 xl vdd vdd sky130_fd_pr__pfet_01v8 w={w_pm*1e6} l={l_pm*1e6}
x8 a2 xl vdd vdd sky130_fd_pr__pfet_01v8 w={w_pm*1e6} l={l_pm*1e6}
cl out 0 2p
