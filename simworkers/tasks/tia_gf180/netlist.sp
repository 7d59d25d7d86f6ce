* Inverter-based transimpedance amplifier on GF180MCU 3.3 V devices for a photodiode (a current
* source with 200 fF): three CMOS inverters in cascade, shared length l, feedback resistor rf
* with capacitor cf from the output back to the input. The feedback biases every inverter near
* its trip point. 100 fF load.
vdd vdd 0 3.3
iin 0 in dc 0 ac 1
cpd in 0 200f
m1n a in 0 0 nmos_3p3 w={w_n1} l={l}
m1p a in vdd vdd pmos_3p3 w={w_p1} l={l}
m2n b a 0 0 nmos_3p3 w={w_n2} l={l}
m2p b a vdd vdd pmos_3p3 w={w_p2} l={l}
m3n out b 0 0 nmos_3p3 w={w_n3} l={l}
m3p out b vdd vdd pmos_3p3 w={w_p3} l={l}
rf out in {rf}
cf out in {cf}
cl out 0 100f
