* First-order RC low-pass filter driven by a 1 V AC source; the capacitor is fixed at 1 nF, so
* the corner frequency is 1 / (2 pi r 1n): r = 10k puts it at 15.9 kHz.
vin in 0 dc 1 ac 1
r1 in out {r}
c1 out 0 1n
