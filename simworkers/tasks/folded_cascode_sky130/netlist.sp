* Single-ended folded-cascode OTA on SKY130 1.8 V devices: an NMOS input pair folds into PMOS
* current sources and PMOS cascodes whose gates sit vbp and vbpc below vdd, with an NMOS low-voltage cascode
* mirror (cascode gate vbnc) turning the differential current into a single-ended output.
* The tail is mirrored from ibias. k_i multiplies the bias current and every width together: the
* current densities, so the operating points, stay, and power trades against speed along it.
* W and L parameters are in metres.
vdd vdd 0 1.8 ac 0
vcm cm 0 1.0
vin inp cm dc 0 ac 1
lfb out inn 1e6
cfb inn 0 1
vbp vdd bp {vbp}
vbpc vdd bpc {vbpc}
vbnc bnc 0 {vbnc}
iref vdd nref {ibias*k_i}
xtr nref nref 0 0 sky130_fd_pr__nfet_01v8 w={w_tail*k_i*2e5} l={l_tail*1e6}
xtail tail nref 0 0 sky130_fd_pr__nfet_01v8 w={w_tail*k_i*1e6} l={l_tail*1e6}
x1 f1 inp tail 0 sky130_fd_pr__nfet_01v8 w={w_in*k_i*1e6} l={l_in*1e6}
x2 f2 inn tail 0 sky130_fd_pr__nfet_01v8 w={w_in*k_i*1e6} l={l_in*1e6}
x3 f1 bp vdd vdd sky130_fd_pr__pfet_01v8 w={w_ps*k_i*1e6} l={l_ps*1e6}
x4 f2 bp vdd vdd sky130_fd_pr__pfet_01v8 w={w_ps*k_i*1e6} l={l_ps*1e6}
x5 xl bpc f1 vdd sky130_fd_pr__pfet_01v8 w={w_pc*k_i*1e6} l={l_pc*1e6}
x6 out bpc f2 vdd sky130_fd_pr__pfet_01v8 w={w_pc*k_i*1e6} l={l_pc*1e6}
x7 xl bnc b1 0 sky130_fd_pr__nfet_01v8 w={w_nc*k_i*1e6} l={l_nc*1e6}
x8 out bnc b2 0 sky130_fd_pr__nfet_01v8 w={w_nc*k_i*1e6} l={l_nc*1e6}
x9 b1 xl 0 0 sky130_fd_pr__nfet_01v8 w={w_nm*k_i*1e6} l={l_nm*1e6}
x10 b2 xl 0 0 sky130_fd_pr__nfet_01v8 w={w_nm*k_i*1e6} l={l_nm*1e6}
cl out 0 2p
