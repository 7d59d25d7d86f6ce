* Two-stage Miller-compensated op-amp, written once for every process: NMOS input pair with a
* PMOS mirror load, PMOS common-source second stage, NMOS current sinks mirrored from ibias,
* Miller capacitor cc with nulling resistor rz. @x@ is the instance letter (m for a model, x for a
* subcircuit) and @s@ scales metres to the process's netlist unit.
* Open-loop AC testbench: a huge inductor closes a DC follower loop, a huge capacitor grounds the
* inverting input for AC.
vdd vdd 0 @vdd@
vcm cm 0 @vcm@
vin inp cm dc 0 ac 1
lfb out inn 1e6
cfb inn 0 1
iref vdd nref {ibias}
@x@8 nref nref 0 0 @nmos@ w={w5*@s@} l={l5*@s@}
@x@5 tail nref 0 0 @nmos@ w={w5*@s@} l={l5*@s@}
@x@1 x inn tail 0 @nmos@ w={w1*@s@} l={l1*@s@}
@x@2 y inp tail 0 @nmos@ w={w1*@s@} l={l1*@s@}
@x@3 x x vdd vdd @pmos@ w={w3*@s@} l={l3*@s@}
@x@4 y x vdd vdd @pmos@ w={w3*@s@} l={l3*@s@}
@x@6 out y vdd vdd @pmos@ w={w6*@s@} l={l6*@s@}
@x@7 out nref 0 0 @nmos@ w={w7*@s@} l={l5*@s@}
rz y z {rz}
cc z out {cc}
cl out 0 @cl@
