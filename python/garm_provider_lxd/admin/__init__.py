"""Operator commands run by hand (check, setup, status, logs, prune, image build), on pylxd.

The GARM commands never import this package: only the command line's dispatch (cli.main, given
arguments) does.
"""
