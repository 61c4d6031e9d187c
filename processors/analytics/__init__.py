"""Pure call analytics on media time: conversation metrics of the two tracks (``talk``), prosody per 3 s window
(``prosody``), detection and level tallies (``tally``) and the Oliver ``basic`` block (``basic``).

Imports only the stdlib, numpy and scipy. Times are integer ms since the call's media start unless a name says
otherwise; sample counts are integers at the track's sample rate.
"""
