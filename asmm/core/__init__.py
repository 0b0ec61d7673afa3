"""The centre every other package depends on, and which depends on nothing else of asmm:

the quote models (:mod:`.model`: A–S and GLFT through one scalar function), the parameter
file (:mod:`.params`), fee tables (:mod:`.fees`), atomic file writes (:mod:`.io`) and every
error asmm raises on purpose (:mod:`.errors`). Units: docs/design.md.
"""
