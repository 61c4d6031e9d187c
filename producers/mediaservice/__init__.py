"""iotcomms.io Mediaservice: the callbacks it posts to us and the call-control commands we send it."""
