* StrongARM latch comparator on SKY130 1.8 V devices, 500 MHz clock. While clk is low, four
* PMOS switches reset the latch outputs (op, on) and the input pair's drains (p, q) to vdd; when
* clk rises the tail turns on, the input pair discharges p and q at different rates and the
* cross-coupled inverters regenerate. Output inverters (fixed size) drive 5 fF each.
* Input: 0.5 mV above and below a 1.2 V common mode, so the decision is made from 1 mV.
* k_w multiplies every latch device's width: speed trades against energy along it (the output
* inverters and their load stay). W and L parameters are in metres.
vdd vdd 0 1.8
vclk clk 0 pulse(0 1.8 0.5n 20p 20p 0.98n 2n)
vinp inp 0 1.2005
vinn inn 0 1.1995
xt tail clk 0 0 sky130_fd_pr__nfet_01v8 w={w_tail*k_w*1e6} l={l_tail*1e6}
x1 p inp tail 0 sky130_fd_pr__nfet_01v8 w={w_in*k_w*1e6} l={l_in*1e6}
x2 q inn tail 0 sky130_fd_pr__nfet_01v8 w={w_in*k_w*1e6} l={l_in*1e6}
x3 on op p 0 sky130_fd_pr__nfet_01v8 w={w_ln*k_w*1e6} l={l_latch*1e6}
x4 op on q 0 sky130_fd_pr__nfet_01v8 w={w_ln*k_w*1e6} l={l_latch*1e6}
x5 on op vdd vdd sky130_fd_pr__pfet_01v8 w={w_lp*k_w*1e6} l={l_latch*1e6}
x6 op on vdd vdd sky130_fd_pr__pfet_01v8 w={w_lp*k_w*1e6} l={l_latch*1e6}
x7 p clk vdd vdd sky130_fd_pr__pfet_01v8 w={w_rst*k_w*1e6} l=0.15
x8 q clk vdd vdd sky130_fd_pr__pfet_01v8 w={w_rst*k_w*1e6} l=0.15
x9 on clk vdd vdd sky130_fd_pr__pfet_01v8 w={w_rst*k_w*1e6} l=0.15
x10 op clk vdd vdd sky130_fd_pr__pfet_01v8 w={w_rst*k_w*1e6} l=0.15
* output inverters: outp rises when on falls (the inp side wins)
xbp outp on 0 0 sky130_fd_pr__nfet_01v8 w=0.5 l=0.15
xbp2 outp on vdd vdd sky130_fd_pr__pfet_01v8 w=1 l=0.15
xbn outn op 0 0 sky130_fd_pr__nfet_01v8 w=0.5 l=0.15
xbn2 outn op vdd vdd sky130_fd_pr__pfet_01v8 w=1 l=0.15
cop outp 0 5f
con outn 0 5f
