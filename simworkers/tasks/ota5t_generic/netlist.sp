* Five-transistor OTA: NMOS input pair, PMOS current-mirror load, NMOS tail mirrored from ibias.
* Open-loop AC testbench: a huge inductor closes a DC follower loop, a huge capacitor grounds the
* inverting input for AC, so the AC sweep sees the open-loop gain at the real operating point.
vdd vdd 0 1.8
vcm cm 0 0.9
vin inp cm dc 0 ac 1
lfb out inn 1e6
cfb inn 0 1
iref vdd nref {ibias}
m5r nref nref 0 0 nch w={w_ref} l={l_tail}
m5 tail nref 0 0 nch w={w_tail} l={l_tail}
m1 x inp tail 0 nch w={w_in} l={l_in}
m2 out inn tail 0 nch w={w_in} l={l_in}
m3 x x vdd vdd pch w={w_ld} l={l_ld}
m4 out x vdd vdd pch w={w_ld} l={l_ld}
cl out 0 1p
